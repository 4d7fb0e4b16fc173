"""Progress bars and one-line messages of ``repsr upscale`` on stderr.

Why a module of its own: files, tiles of one huge image and frames of a video all report
through the same bar, and a message printed while a bar is live must go through the bar's
console or it tears the display. Without a bar (one small file) messages are plain stderr lines.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# ``tick(n)``: n more units (files, tiles, frames) are done
Tick = Callable[[int], None]


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr (``None`` when disabled)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield progress


def say(progress: Progress | None, message: str) -> None:
    """Print one line on stderr without tearing a live bar."""
    if progress is None:
        print(message, file=sys.stderr)
    else:
        progress.console.print(message, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def subtask(progress: Progress | None, name: str, total: int | None, unit: str) -> Iterator[Tick]:
    """A bar for one long item (tiles of an image, frames of a video); yields its ``tick``.

    Inside a shared bar (several files) the task is removed again when the item is done, so
    the display keeps one line per file in progress; alone, the item gets a bar of its own.
    """
    with progress_bar(progress is None) as own:
        bar = progress or own
        assert bar is not None
        task = bar.add_task(name, total=total, rate="")
        start, done = time.perf_counter(), 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(time.perf_counter() - start, 1e-9)
            bar.update(task, advance=n, rate=f"{rate:.1f} {unit}/s")

        try:
            yield tick
        finally:
            if progress is not None:
                progress.remove_task(task)
