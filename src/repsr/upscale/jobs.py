"""Running planned upscale jobs (images, animations and videos): one bad file is one line, never the end of the run."""

from __future__ import annotations

import contextlib
import time

import cv2
import numpy as np
from rich.progress import Progress

from repsr.errors import UserError
from repsr.imageio import count_frames
from repsr.inference import Upscaler, as_upscaler
from repsr.progress import progress_bar, say
from repsr.upscale.animation import (
    PreparedAnimation,
    UpscaledAnimation,
    compute_animation,
    prepare_animation,
    write_animation_output,
)
from repsr.upscale.image import PreparedImage, compute_image, prepare_image, write_output
from repsr.upscale.pipeline import pipelined
from repsr.upscale.plan import Job, UpscaleOptions, is_video
from repsr.upscale.video import upscale_video

Prepared = PreparedImage | PreparedAnimation | None  # None: a video (it streams on its own in the compute stage)
Output = np.ndarray | UpscaledAnimation | None


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


def _read(job: Job, scale: int, opts: UpscaleOptions) -> Prepared:
    if is_video(job.source):
        return None
    if count_frames(job.source) > 1:
        return prepare_animation(job, scale, opts)
    return prepare_image(job, scale, opts)


def _compute(upscaler: Upscaler, job: Job, prepared: Prepared, opts: UpscaleOptions,
             progress: Progress | None) -> tuple[str, tuple[str, ...], Output]:
    """(what was done, warnings, output to write); a video is done whole here (it streams on its own)."""
    if prepared is None:
        frames, size_in, size_out = upscale_video(upscaler, job.source, job.target, opts, progress)
        return f"{frames} frames, {size_in[0]}x{size_in[1]} -> {size_out[0]}x{size_out[1]}", (), None
    if isinstance(prepared, PreparedAnimation):
        (w, h), (sw, sh) = prepared.animation.size, prepared.size
        what = f"{prepared.animation.frames} frames, {w}x{h} -> {sw}x{sh}"
        return what, prepared.warnings, compute_animation(upscaler, job, prepared, opts, progress)
    (w, h), (sw, sh) = prepared.image.size, prepared.size
    return f"{w}x{h} -> {sw}x{sh}", prepared.warnings, compute_image(upscaler, job, prepared, opts, progress)


def _write(job: Job, computed: tuple[str, tuple[str, ...], Output]) -> tuple[str, tuple[str, ...]]:
    what, warnings, out = computed
    if isinstance(out, UpscaledAnimation):
        write_animation_output(job, out)
    elif out is not None:
        write_output(job, out)
    return what, warnings


def _why(job: Job, exc: BaseException, opts: UpscaleOptions) -> str:
    """The one-line reason for a failed file; an exception that is no user error or OOM is re-raised."""
    if not isinstance(exc, UserError) and not _is_out_of_memory(exc):
        raise exc
    why = str(exc) if isinstance(exc, UserError) else out_of_memory_hint(opts.tile)
    return why if str(job.source) in why else f"{job.source}: {why}"


def upscale_jobs(upscaler: Upscaler, jobs: list[Job], opts: UpscaleOptions, verbose: bool = True) -> int:
    """Run every job; a failing file is reported as ``error: <file>: <why>`` and skipped.

    Decoding, the network and encoding of successive files overlap (:func:`~repsr.upscale.pipeline.pipelined`);
    each file's lines (its warnings, then ``wrote`` or ``error``) come out together and in input order.
    ``verbose=False`` prints only warnings and errors (no bar, no ``wrote`` lines). Returns the number of
    failed files. Out-of-memory is reported with the remedy (a smaller
    ``--tile`` than the one in use).
    """
    failed = 0
    scale = as_upscaler(upscaler).scale
    with progress_bar(len(jobs) > 1 and verbose) as progress:
        task = progress.add_task("upscaling", total=len(jobs), rate="") if progress else None
        last = time.perf_counter()
        outcomes = pipelined(jobs, lambda job: _read(job, scale, opts),
                             lambda job, prepared: _compute(upscaler, job, prepared, opts, progress),
                             _write, lambda _job, prepared: 0 if prepared is None else prepared.nbytes)
        with contextlib.closing(outcomes):  # an unexpected error stops the reader and writer threads
            for outcome in outcomes:
                job = outcome.item
                if outcome.error is not None:
                    say(progress, f"error: {_why(job, outcome.error, opts)}")
                    failed += 1
                else:
                    what, warnings = outcome.result
                    for line in warnings:
                        say(progress, line)
                    if verbose and progress is None:
                        print(f"wrote {job.target} ({what}, {time.perf_counter() - last:.2f} s)")
                last = time.perf_counter()
                if progress is not None and task is not None:
                    progress.advance(task)
    if len(jobs) > 1 and verbose:
        say(None, f"upscaled {len(jobs) - failed} of {len(jobs)} files into their targets"
            + (f"; {failed} failed" if failed else ""))
    return failed
