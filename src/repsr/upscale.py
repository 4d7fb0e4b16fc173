"""Upscaling files and folders of images (and videos, via :mod:`repsr.video`) with any upscaler.

Why a pipeline around :func:`repsr.inference.upscale_to_pixels`: users hand over whole folders of
mixed images. Each file keeps what the network does not touch -- alpha is upscaled on its own
(bicubic on the alpha plane, never through the net), a gray image is written back gray, 16-bit
in gives 16-bit out -- and one bad file is reported in one line and skipped, never aborting
the rest. What a format cannot keep (alpha in JPEG, 16 bits in JPEG/WebP) is said, per file.
Folders are walked recursively and their relative layout is kept under ``-o``; files inside the
output folder are never inputs (an output folder inside the input folder is not re-upscaled on
the next run). Output names are checked before any work: two inputs that would write the same
file, or an output that would replace an input, are refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rich.progress import Progress

from repsr.errors import ReprError
from repsr.imageio import IMAGE_SUFFIXES, LoadedImage, quantize, read_image, resize_pixels, write_image
from repsr.inference import Upscaler, as_upscaler, plan_tiles, upscale_to_pixels
from repsr.progress import progress_bar, say, subtask
from repsr.video import VIDEO_SUFFIXES, is_video, upscale_video

# A truncated file is reported once, by us, not also as a libpng warning.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

EXTS = ("auto", "png", "jpg", "webp")
NO_ALPHA = (".jpg", ".jpeg", ".bmp")  # formats that cannot store transparency
DEEP = (".png", ".tif", ".tiff")  # formats that can store 16 bits per channel


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


def _walk(folder: Path, skip: Path) -> list[Path]:
    """Images and videos under ``folder``, hidden files and anything under ``skip`` left out."""
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    skip = skip.resolve()
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                  and not p.name.startswith(".") and not p.resolve().is_relative_to(skip))


def _target_name(rel: Path, opts: UpscaleOptions) -> Path:
    ext = rel.suffix if opts.ext == "auto" or is_video(rel) else f".{opts.ext}"
    return rel.with_name(f"{rel.stem}{opts.suffix}{ext}")


def plan_jobs(inputs: list[str | Path], output: str | Path, opts: UpscaleOptions) -> list[Job]:
    """Pair every input file with its output path, refusing any plan that would lose a file.

    One input file with an ``-o`` that has a known suffix writes exactly there; otherwise ``-o``
    is a folder and each file keeps its name (plus ``--suffix``; folder inputs keep their
    relative sub-folders). Missing inputs, a video written as an image (or the reverse), two
    inputs with one output name and outputs that would replace an input are user errors.
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
            pairs = [(f, f.relative_to(src)) for f in _walk(src, output)] if src.is_dir() else [(src, Path(src.name))]
            jobs += [Job(f, output / _target_name(rel, opts)) for f, rel in pairs]
    check_jobs(jobs)
    return jobs


def check_jobs(jobs: list[Job]) -> None:
    """Raise before any work if a job cannot be done or would overwrite what another needs."""
    sources = {job.source.resolve(): job for job in jobs}
    targets: dict[Path, Job] = {}
    for job in jobs:
        if is_video(job.source) != is_video(job.target):
            what = "a video" if is_video(job.source) else "an image"
            raise ReprError(f"{job.source}: {what} cannot be written as '{job.target.suffix}' "
                            f"(name the output {job.source.suffix} or give a folder)")
        target = job.target.resolve()
        if target == job.source.resolve():
            raise ReprError(f"{job.source}: output would overwrite the input (use --suffix or another -o)")
        if target in sources:
            raise ReprError(f"{job.source}: output {job.target} would overwrite the input {sources[target].source} "
                            "(use --suffix or another -o)")
        if target in targets:
            raise ReprError(f"{targets[target].source} and {job.source} would both be written to {job.target} "
                            "(use --ext auto or --suffix, or upscale them separately)")
        targets[target] = job


def _allocate(shape: tuple[int, ...], depth: int) -> np.ndarray:
    try:
        return np.empty(shape, np.uint16 if depth == 16 else np.uint8)
    except MemoryError:
        gb = np.prod(shape) * depth / 8 / 1e9
        raise ReprError(f"the {shape[1]}x{shape[0]} output image ({gb:.1f} GB) does not fit in memory "
                        "(tiles cannot help: use a smaller -s)") from None


def _alpha_plane(image: LoadedImage, depth: int) -> np.ndarray:
    """The alpha plane at the output's bit depth (16-bit alpha rounded for an 8-bit format)."""
    alpha = image.pixels[:, :, -1]
    if image.bit_depth == 16 and depth == 8:
        return quantize(alpha / 65535.0, 8)
    return np.ascontiguousarray(alpha)


def upscale_pixels(upscaler: Upscaler, image: LoadedImage, size: tuple[int, int], depth: int, keep_alpha: bool,
                   opts: UpscaleOptions, on_tile=None) -> np.ndarray:
    """The output image (H', W', C) of ``size`` = (W', H') as uint8/uint16, colour then alpha.

    The network writes its tiles straight into the preallocated result (see
    :func:`~repsr.inference.upscale_to_pixels`); alpha is bicubic-resized into the last channel.
    Only a final scale other than the network's (``-s``) needs a second, resized array.
    """
    _, scale, _, _ = as_upscaler(upscaler)
    w, h = image.size
    planes = 1 if image.gray else 3
    direct = size == (w * scale, h * scale)
    out = _allocate((h * scale, w * scale, planes + int(keep_alpha and direct)), depth)
    upscale_to_pixels(upscaler, image, out[:, :, :planes], opts.tile, opts.tile_pad, on_tile)
    if not direct:
        out = resize_pixels(out, size)
    if keep_alpha:
        alpha = resize_pixels(_alpha_plane(image, depth), size)
        if direct:
            out[:, :, planes] = alpha[:, :, 0]
        else:
            out = np.concatenate([out, alpha], axis=2)
    return out


def upscale_image_file(upscaler: Upscaler, job: Job, opts: UpscaleOptions,
                       progress: Progress | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Read, upscale, write one image; returns (input size, output size) as (W, H).

    An image of more than one tile gets a progress bar of its tiles (a 6000x4000 photo takes
    minutes on a CPU). A format that cannot keep the alpha or the 16 bits is said, not hidden.
    """
    image = read_image(job.source)
    _, scale, radius, align = as_upscaler(upscaler)
    suffix = job.target.suffix.lower()
    depth = image.bit_depth if suffix in DEEP else 8
    keep_alpha = image.has_alpha and suffix not in NO_ALPHA
    if image.has_alpha and not keep_alpha:
        say(progress, f"warning: {job.source}: {suffix} has no transparency; alpha dropped (use --ext png to keep it)")
    if image.bit_depth == 16 and depth == 8:
        say(progress, f"warning: {job.source}: 16-bit image written as 8-bit {suffix} (use --ext png to keep 16 bits)")
    w, h = image.size
    factor = opts.outscale or scale
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    pad = radius if opts.tile_pad is None else opts.tile_pad
    tiles = len(plan_tiles(h, w, opts.tile, pad, align))
    if tiles > 1:
        with subtask(progress, f"{job.source.name} (tiles)", tiles, "tiles") as tick:
            out = upscale_pixels(upscaler, image, size, depth, keep_alpha, opts, lambda _: tick(1))
    else:
        out = upscale_pixels(upscaler, image, size, depth, keep_alpha, opts)
    del image
    write_image(job.target, out[:, :, 0] if out.shape[2] == 1 else out, reuse=True)
    return (w, h), size


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
