"""Upscaling one image file with any upscaler, keeping what the network does not touch.

Why a pipeline around :func:`repsr.inference.upscale_to_pixels`: alpha is upscaled on its own
(bicubic on the alpha plane, never through the net), a gray image is written back gray, 16-bit
in gives 16-bit out. What a format cannot keep (alpha in JPEG, 16 bits in JPEG/WebP, gray in WebP,
colours and smooth alpha in GIF) and what decoding changed (CMYK -> RGB) is said, per file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from rich.progress import Progress

from repsr.errors import UserError
from repsr.imageio import GRAY_ALPHA_SUFFIXES, LoadedImage, quantize, read_image, resize_pixels, write_image
from repsr.inference import Upscaler, as_upscaler, plan_tiles, upscale_to_pixels
from repsr.progress import say, subtask
from repsr.upscale.plan import Job, UpscaleOptions

# A truncated file is reported once, by us, not also as a libpng warning.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

NO_ALPHA = (".jpg", ".jpeg", ".bmp")  # formats that cannot store transparency
DEEP = (".png", ".tif", ".tiff")  # formats that can store 16 bits per channel


def _allocate(shape: tuple[int, ...], depth: int) -> np.ndarray:
    try:
        return np.empty(shape, np.uint16 if depth == 16 else np.uint8)
    except MemoryError:
        gb = np.prod(shape) * depth / 8 / 1e9
        raise UserError(f"the {shape[1]}x{shape[0]} output image ({gb:.1f} GB) does not fit in memory "
                        "(tiles cannot help: use a smaller -s)") from None


def _alpha_plane(image: LoadedImage, depth: int) -> np.ndarray:
    """The alpha plane at the output's bit depth (16-bit alpha rounded for an 8-bit format)."""
    alpha = image.pixels[:, :, -1]
    if image.bit_depth == 16 and depth == 8:
        return quantize(alpha / 65535.0, 8)
    return np.ascontiguousarray(alpha)


def upscale_pixels(upscaler: Upscaler, image: LoadedImage, size: tuple[int, int], depth: int, keep_alpha: bool,
                   opts: UpscaleOptions, on_tile: Callable[[int], None] | None = None) -> np.ndarray:
    """The output image (H', W', C) of ``size`` = (W', H') as uint8/uint16, colour then alpha.

    The network writes its tiles straight into the preallocated result (see
    :func:`~repsr.inference.upscale_to_pixels`); alpha is bicubic-resized into the last channel.
    Only a final scale other than the network's (``-s``) needs a second, resized array.
    """
    scale = as_upscaler(upscaler).scale
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


@dataclass(frozen=True)
class PreparedImage:
    """A decoded image and what its output will be: the read stage of a job, before the network."""

    image: LoadedImage
    size: tuple[int, int]  # output (W, H)
    depth: int  # output bits per channel
    keep_alpha: bool
    warnings: tuple[str, ...]  # what the output format cannot keep, said once per file

    @property
    def nbytes(self) -> int:
        """Bytes of the output array (colour plus alpha), for the pipeline's memory budget."""
        planes = (1 if self.image.gray else 3) + int(self.keep_alpha)
        return self.size[0] * self.size[1] * planes * self.depth // 8


def format_warnings(job: Job, suffix: str, gray: bool, alpha: bool, bit_depth: int) -> tuple[str, ...]:
    """What the output format ``suffix`` cannot keep of a source with these facts, one ``warning:`` line each."""
    src = job.source
    warnings = []
    if alpha and suffix in NO_ALPHA:
        warnings.append(f"warning: {src}: {suffix} has no transparency; alpha dropped (use --ext png to keep it)")
    if bit_depth == 16 and suffix not in DEEP:
        warnings.append(f"warning: {src}: 16-bit image written as 8-bit {suffix} (use --ext png to keep 16 bits)")
    if gray and suffix == ".webp":
        warnings.append(f"warning: {src}: .webp has no grayscale; written as {'RGBA' if alpha else 'RGB'} with "
                        "equal channels (use --ext png to keep it gray)")
    elif gray and alpha and suffix in GRAY_ALPHA_SUFFIXES and bit_depth == 16:
        warnings.append(f"warning: {src}: 16-bit gray + alpha written as 16-bit RGBA with equal channels (no encoder "
                        "here writes 16-bit gray + alpha)")
    if suffix == ".gif" and src.suffix.lower() != ".gif":
        warnings.append(f"warning: {src}: .gif holds 256 colours per frame" + (" and 1-bit transparency (alpha "
                        "thresholded at half)" if alpha else "") + "; use .png or .webp to keep them")
    return tuple(warnings)


def prepare_image(job: Job, scale: int, opts: UpscaleOptions) -> PreparedImage:
    """Decode ``job.source`` and decide the output's size, depth and alpha (no network yet)."""
    image = read_image(job.source)
    suffix = job.target.suffix.lower()
    depth = image.bit_depth if suffix in DEEP else 8
    keep_alpha = image.has_alpha and suffix not in NO_ALPHA
    warnings = ((f"note: {job.source}: {image.note}",) if image.note else ()) + format_warnings(
        job, suffix, image.gray, image.has_alpha, image.bit_depth)
    w, h = image.size
    factor = opts.outscale or scale
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return PreparedImage(image, size, depth, keep_alpha, warnings)


def compute_image(upscaler: Upscaler, job: Job, prepared: PreparedImage, opts: UpscaleOptions,
                  progress: Progress | None = None) -> np.ndarray:
    """The output pixels of a prepared image; a progress bar of its tiles when it has more than one
    (a 6000x4000 photo takes minutes on a CPU)."""
    run = as_upscaler(upscaler)
    h, w = prepared.image.pixels.shape[:2]
    pad = run.receptive_radius if opts.tile_pad is None else opts.tile_pad
    tiles = len(plan_tiles(h, w, opts.tile, pad, run.tile_alignment))
    args = (upscaler, prepared.image, prepared.size, prepared.depth, prepared.keep_alpha, opts)
    if tiles > 1:
        with subtask(progress, f"{job.source.name} (tiles)", tiles, "tiles") as tick:
            return upscale_pixels(*args, lambda _: tick(1))
    return upscale_pixels(*args)


def write_output(job: Job, out: np.ndarray) -> None:
    """Encode ``out`` (OpenCV, streamed; its channels are reordered in place) to ``job.target``."""
    write_image(job.target, out[:, :, 0] if out.shape[2] == 1 else out, reuse=True)


def upscale_image_file(upscaler: Upscaler, job: Job, opts: UpscaleOptions,
                       progress: Progress | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Read, upscale, write one image, one stage after another; returns (input size, output size) as (W, H).

    A format that cannot keep the alpha or the 16 bits is said, not hidden. Folders go through
    :mod:`repsr.upscale.jobs`, which overlaps the same three stages across files.
    """
    prepared = prepare_image(job, as_upscaler(upscaler).scale, opts)
    for line in prepared.warnings:
        say(progress, line)
    out = compute_image(upscaler, job, prepared, opts, progress)
    size_in = prepared.image.size
    del prepared
    write_output(job, out)
    return size_in, (out.shape[1], out.shape[0])
