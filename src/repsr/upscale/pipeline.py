"""A three-stage thread pipeline: read -> compute -> write, with bounded queues and a memory budget.

Why: upscaling a folder on one core is decode, network, quantise, encode, one after another; PNG
encoding alone is a quarter of the network's time for a 720p image at x2. Decoding (Pillow, OpenCV,
PyAV) and encoding release the GIL, so a reader thread and a writer thread overlap them with the
network, which runs on the calling thread (its torch thread settings and progress bars stay there).

Guarantees: outcomes come back in input order (every stage is FIFO), one per item, each with its
result or the exception that stopped it (one bad file never stops the others); at most ``depth``
items wait between two stages; and outputs in flight (computed, not yet written) stay under
``budget`` bytes -- an output larger than the budget waits until nothing else is in flight, so a
folder of huge images uses no more memory than one of them did without the pipeline.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
BUDGET = 1 << 30  # bytes of outputs in flight (computed, not yet written)


@dataclass
class Outcome(Generic[T]):
    """What became of one item: ``result`` of its write stage, or the ``error`` that stopped it."""

    item: T
    result: Any = None
    error: BaseException | None = None


# What the reader hands on: (item, read value, error), and what compute hands on: the same plus the bytes held
# in flight. The item is Any, not T: the one entry that reports a failed source has item None (see pipelined).
_Read = tuple[Any, Any, Exception | None]
_Computed = tuple[Any, Any, Exception | None, int]


class InFlight:
    """A byte budget for outputs between compute and write (a semaphore counted in bytes)."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int) -> None:
        """Wait until ``nbytes`` fit in the budget, or nothing else is in flight."""
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.budget)
            self.used += nbytes

    def release(self, nbytes: int) -> None:
        with self._cond:
            self.used -= nbytes
            self._cond.notify_all()


def _put(q: queue.Queue[_Read | None], value: _Read | None, stop: threading.Event) -> bool:
    """Put unless the pipeline was stopped (a consumer that gave up never leaves a thread blocked)."""
    while not stop.is_set():
        try:
            q.put(value, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def pipelined(items: Iterable[T], read: Callable[[T], Any], compute: Callable[[T, Any], Any],
              write: Callable[[T, Any], Any], size_of: Callable[[T, Any], int] = lambda *_: 0,
              depth: int = 2, budget: int = BUDGET) -> Generator[Outcome[T], None, None]:
    """Run ``write(item, compute(item, read(item)))`` for every item, the stages overlapped.

    ``read`` runs on a reader thread, ``compute`` on the calling thread, ``write`` on a writer thread.
    ``size_of(item, read_value)`` is the bytes its output will hold until written: the budget is
    taken before ``compute`` allocates it. Outcomes are
    yielded in input order as soon as each write ends. Closing the generator early stops both threads.
    ``items`` is iterated on the reader thread (a generator that decodes a video works); if it raises,
    the last outcome has ``item=None`` and that error.
    """
    # None ends each stream (every stage is FIFO, so it comes after everything else)
    to_compute: queue.Queue[_Read | None] = queue.Queue(depth)
    to_write: queue.Queue[_Computed | None] = queue.Queue(depth)
    done: queue.Queue[Outcome[T] | None] = queue.Queue()
    stop, flight = threading.Event(), InFlight(budget)

    def reader() -> None:
        try:
            for item in items:
                try:
                    value, error = read(item), None
                except Exception as exc:  # passed on: the caller decides what is a user error
                    value, error = None, exc
                if not _put(to_compute, (item, value, error), stop):
                    return
        except Exception as exc:  # the source itself failed (a demuxer): one outcome without an item
            _put(to_compute, (None, None, exc), stop)
        _put(to_compute, None, stop)

    def writer() -> None:
        while (entry := to_write.get()) is not None:
            item, value, error, nbytes = entry
            if error is None:
                try:
                    value = write(item, value)
                except Exception as exc:
                    value, error = None, exc
            flight.release(nbytes)
            done.put(Outcome(item, value, error))
        done.put(None)

    threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=writer, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        while (entry := to_compute.get()) is not None:
            item, value, error = entry
            nbytes = 0
            if error is None:
                try:
                    nbytes = size_of(item, value)
                    flight.acquire(nbytes)
                    value = compute(item, value)
                except Exception as exc:
                    value, error = None, exc
            to_write.put((item, value, error, nbytes))
            while not done.empty():
                ready = done.get()
                assert ready is not None  # the writer ends `done` only after it reads the end of `to_write`
                yield ready
        to_write.put(None)
        while (outcome := done.get()) is not None:
            yield outcome
    finally:  # joined, not abandoned: a writer still muxing into a container the caller closes would crash
        stop.set()
        if threads[1].is_alive():
            to_write.put(None)
        for thread in threads:
            thread.join()
