"""The read -> compute -> write pipeline: order, per-item errors, the memory budget, clean shutdown."""

from __future__ import annotations

import threading

import pytest

from repsr.upscale.pipeline import pipelined


def test_outcomes_keep_input_order_and_every_failure_is_its_own() -> None:
    main = threading.get_ident()
    stages: dict[str, set[int]] = {"read": set(), "compute": set(), "write": set()}

    def read(i: int) -> int:
        stages["read"].add(threading.get_ident())
        if i == 3:
            raise ValueError("bad read")
        return i * 10

    def compute(i: int, value: int) -> int:
        stages["compute"].add(threading.get_ident())
        if i == 5:
            raise OSError("bad compute")
        return value + 1

    def write(i: int, value: int) -> int:
        stages["write"].add(threading.get_ident())
        if i == 7:
            raise RuntimeError("bad write")
        return value * 2

    outcomes = list(pipelined(range(10), read, compute, write, depth=1))
    assert [o.item for o in outcomes] == list(range(10))
    failed = {o.item: type(o.error) for o in outcomes if o.error is not None}
    assert failed == {3: ValueError, 5: OSError, 7: RuntimeError}
    assert [o.result for o in outcomes if o.error is None] == [(i * 10 + 1) * 2 for i in (0, 1, 2, 4, 6, 8, 9)]
    assert stages["compute"] == {main}  # the network stays on the caller's thread
    assert main not in stages["read"] | stages["write"]


@pytest.mark.parametrize("sizes", [[6, 6, 6, 6], [4, 30, 4, 4]])
def test_outputs_in_flight_stay_within_the_budget(sizes: list[int]) -> None:
    """Bytes computed but not yet written never exceed the budget, except one output alone above it."""
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def compute(i: int, _: None) -> int:
        with lock:
            in_flight[0] += sizes[i]
            peak[0] = max(peak[0], in_flight[0])
        return i

    def write(i: int, _: int) -> None:
        with lock:
            in_flight[0] -= sizes[i]

    outcomes = list(pipelined(range(len(sizes)), lambda _: None, compute, write,
                              size_of=lambda i, _: sizes[i], depth=3, budget=10))
    assert all(o.error is None for o in outcomes)
    assert peak[0] == max(sizes) if max(sizes) > 10 else peak[0] <= 10


def test_closing_early_stops_reader_and_writer() -> None:
    before = threading.active_count()
    outcomes = pipelined(range(1000), lambda i: i, lambda _i, v: v, lambda _i, v: v, depth=1)
    assert next(outcomes).item == 0
    outcomes.close()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.daemon:
            thread.join(timeout=5)
    assert threading.active_count() <= before


def test_a_failing_source_ends_with_one_itemless_error_after_the_items_it_gave() -> None:
    def source():
        yield 1
        yield 2
        raise OSError("demuxer failed")

    outcomes = list(pipelined(source(), lambda i: i, lambda _i, v: v, lambda _i, v: v))
    assert [(o.item, o.result) for o in outcomes[:2]] == [(1, 1), (2, 2)]
    assert outcomes[2].item is None and isinstance(outcomes[2].error, OSError) and len(outcomes) == 3
