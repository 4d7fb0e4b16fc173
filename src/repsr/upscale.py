"""Upscaling files and folders of images (and videos, via :mod:`repsr.video`) with any upscaler.

Why a pipeline around :func:`repsr.inference.upscale_tiled`: users hand over whole folders of
mixed images. Each file keeps what the network does not touch -- alpha is upscaled on its own
(bicubic on the alpha plane, never through the net), a gray image is written back gray, 16-bit
in gives 16-bit out -- and one bad file is reported in one line and skipped, never aborting
the rest. Folders are walked recursively and their relative layout is kept under ``-o``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from repsr.errors import ReprError
from repsr.imageio import IMAGE_SUFFIXES, LoadedImage, read_image, to_array, write_image
from repsr.inference import Upscaler, as_upscaler, upscale_tiled

# A truncated file is reported once, by us, not also as a libpng warning.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")
EXTS = ("auto", "png", "jpg", "webp")


@dataclass(frozen=True)
class UpscaleOptions:
    """Per-run choices: tiling, output naming, final scale (``None`` = the model's), video batch."""

    tile: int = 0
    tile_pad: int | None = None
    suffix: str = ""
    ext: str = "auto"
    outscale: float | None = None
    batch: int = 4


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _walk(folder: Path) -> list[Path]:
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                  and not p.name.startswith("."))


def _target_name(rel: Path, opts: UpscaleOptions) -> Path:
    ext = rel.suffix if opts.ext == "auto" or is_video(rel) else f".{opts.ext}"
    return rel.with_name(f"{rel.stem}{opts.suffix}{ext}")


def plan_jobs(inputs: list[str | Path], output: str | Path, opts: UpscaleOptions) -> list[Job]:
    """Pair every input file with its output path.

    One input file with an ``-o`` that has a known suffix writes exactly there; otherwise ``-o``
    is a folder and each file keeps its name (plus ``--suffix``; folder inputs keep their
    relative sub-folders). Missing inputs and would-be overwrites of an input are user errors.
    """
    output = Path(output)
    sources = [Path(p) for p in inputs]
    for src in sources:
        if not src.exists():
            raise ReprError(f"{src}: no such file or folder")
    single = len(sources) == 1 and sources[0].is_file()
    if single and output.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        jobs = [Job(sources[0], output)]
    else:
        jobs = []
        for src in sources:
            pairs = [(f, f.relative_to(src)) for f in _walk(src)] if src.is_dir() else [(src, Path(src.name))]
            jobs += [Job(f, output / _target_name(rel, opts)) for f, rel in pairs]
    for job in jobs:
        if job.target.resolve() == job.source.resolve():
            raise ReprError(f"{job.source}: output would overwrite the input (use --suffix or another -o)")
    return jobs


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float (H, W[, C]) to ``size`` = (W, H): area filter down, bicubic up, clipped to [0, 1]."""
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    smaller = size[0] < image.shape[1]
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0)


def upscale_loaded(upscaler: Upscaler, image: LoadedImage, opts: UpscaleOptions) -> LoadedImage:
    """Colour through the network (tiled), alpha by bicubic, then resize to ``outscale`` if asked."""
    _, scale, _, _ = as_upscaler(upscaler)
    lr = torch.from_numpy(image.rgb).permute(2, 0, 1)[None]
    rgb = upscale_tiled(upscaler, lr, opts.tile, opts.tile_pad)[0].permute(1, 2, 0).numpy()
    factor = opts.outscale or scale
    w, h = image.size
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    rgb = resize_to(np.ascontiguousarray(rgb), size)
    alpha = None if image.alpha is None else resize_to(image.alpha, size)
    return LoadedImage(rgb, alpha, image.gray, image.bit_depth)


def upscale_image_file(upscaler: Upscaler, job: Job, opts: UpscaleOptions) -> tuple[tuple[int, int], ...]:
    """Read, upscale, write one image; returns (input size, output size) as (W, H)."""
    image = read_image(job.source)
    out = upscale_loaded(upscaler, image, opts)
    suffix = job.target.suffix.lower()
    depth = out.bit_depth if suffix in (".png", ".tif", ".tiff") else 8
    alpha = None if suffix in (".jpg", ".jpeg", ".bmp") else out.alpha  # formats without alpha
    write_image(job.target, to_array(out.rgb, alpha, out.gray, depth))
    return image.size, out.size


@contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr (``None`` when disabled or for a single file)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield progress


def _report(progress: Progress | None, message: str) -> None:
    if progress is None:
        print(message, file=sys.stderr)
    else:
        progress.console.print(message, markup=False, highlight=False)


def _run_job(upscaler: Upscaler, job: Job, opts: UpscaleOptions, progress: Progress | None) -> str:
    if is_video(job.source):
        from repsr.video import upscale_video

        frames, size_in, size_out = upscale_video(upscaler, job.source, job.target, opts, progress)
        return f"{frames} frames, {size_in[0]}x{size_in[1]} -> {size_out[0]}x{size_out[1]}"
    size_in, size_out = upscale_image_file(upscaler, job, opts)
    return f"{size_in[0]}x{size_in[1]} -> {size_out[0]}x{size_out[1]}"


def upscale_jobs(upscaler: Upscaler, jobs: list[Job], opts: UpscaleOptions, verbose: bool = True) -> int:
    """Run every job; a failing file is reported as ``error: <file>: <why>`` and skipped.

    Returns the number of failed files. Out-of-memory is reported with the remedy (``--tile``).
    """
    failed = 0
    with progress_bar(len(jobs), len(jobs) > 1) as progress:
        task = progress.add_task("upscaling", total=len(jobs), rate="") if progress else None
        for job in jobs:
            start = time.perf_counter()
            try:
                what = _run_job(upscaler, job, opts, progress)
                if verbose and progress is None:
                    print(f"wrote {job.target} ({what}, {time.perf_counter() - start:.2f} s)")
            except (ReprError, MemoryError, RuntimeError) as exc:
                if isinstance(exc, RuntimeError) and "out of memory" not in str(exc).lower():
                    raise
                why = str(exc) if isinstance(exc, ReprError) else "out of memory (try --tile 256)"
                why = why if str(job.source) in why else f"{job.source}: {why}"
                _report(progress, f"error: {why}")
                failed += 1
            if progress is not None and task is not None:
                progress.advance(task)
    if len(jobs) > 1 and verbose:
        print(f"upscaled {len(jobs) - failed} of {len(jobs)} files into their targets"
              + (f"; {failed} failed" if failed else ""), file=sys.stderr)
    return failed
