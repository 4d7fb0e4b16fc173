"""Running planned upscale jobs (images and videos): one bad file is one line, never the end of the run."""

from __future__ import annotations

import time

import cv2
from rich.progress import Progress

from repsr.errors import ReprError
from repsr.inference import Upscaler
from repsr.progress import progress_bar, say
from repsr.upscale.image import upscale_image_file
from repsr.upscale.plan import Job, UpscaleOptions, is_video
from repsr.upscale.video import upscale_video


def out_of_memory_hint(tile: int) -> str:
    """What to do after an out-of-memory error at ``--tile tile`` (0 = untiled)."""
    if tile <= 0:
        return "out of memory (try --tile 512, or smaller)"
    if tile > 32:
        return f"out of memory with --tile {tile} (try --tile {tile // 2})"
    return (f"out of memory even with --tile {tile} (the output image itself may not fit: "
            "try a smaller -s, or free memory)")


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, cv2.error)) and any(
        s in text for s in ("out of memory", "can't allocate memory", "insufficient memory", "failed to allocate"))


def _run_job(upscaler: Upscaler, job: Job, opts: UpscaleOptions, progress: Progress | None) -> str:
    if is_video(job.source):
        frames, size_in, size_out = upscale_video(upscaler, job.source, job.target, opts, progress)
        return f"{frames} frames, {size_in[0]}x{size_in[1]} -> {size_out[0]}x{size_out[1]}"
    size_in, size_out = upscale_image_file(upscaler, job, opts, progress)
    return f"{size_in[0]}x{size_in[1]} -> {size_out[0]}x{size_out[1]}"


def upscale_jobs(upscaler: Upscaler, jobs: list[Job], opts: UpscaleOptions, verbose: bool = True) -> int:
    """Run every job; a failing file is reported as ``error: <file>: <why>`` and skipped.

    Returns the number of failed files. Out-of-memory is reported with the remedy (a smaller
    ``--tile`` than the one in use).
    """
    failed = 0
    with progress_bar(len(jobs) > 1) as progress:
        task = progress.add_task("upscaling", total=len(jobs), rate="") if progress else None
        for job in jobs:
            start = time.perf_counter()
            try:
                what = _run_job(upscaler, job, opts, progress)
                if verbose and progress is None:
                    print(f"wrote {job.target} ({what}, {time.perf_counter() - start:.2f} s)")
            except Exception as exc:
                if not isinstance(exc, ReprError) and not _is_out_of_memory(exc):
                    raise
                why = str(exc) if isinstance(exc, ReprError) else out_of_memory_hint(opts.tile)
                why = why if str(job.source) in why else f"{job.source}: {why}"
                say(progress, f"error: {why}")
                failed += 1
            if progress is not None and task is not None:
                progress.advance(task)
    if len(jobs) > 1 and verbose:
        say(None, f"upscaled {len(jobs) - failed} of {len(jobs)} files into their targets"
            + (f"; {failed} failed" if failed else ""))
    return failed
