"""Upscaling one image file with any upscaler, keeping what the network does not touch.

Why a pipeline around :func:`repsr.inference.upscale_to_pixels`: alpha is upscaled on its own
(bicubic on the alpha plane, never through the net), a gray image is written back gray, 16-bit
in gives 16-bit out. What a format cannot keep (alpha in JPEG, 16 bits in JPEG/WebP) is said, per file.
"""

from __future__ import annotations

import cv2
import numpy as np
from rich.progress import Progress

from repsr.errors import ReprError
from repsr.imageio import LoadedImage, quantize, read_image, resize_pixels, write_image
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


def upscale_image_file(upscaler: Upscaler, job: Job, opts: UpscaleOptions,
                       progress: Progress | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Read, upscale, write one image; returns (input size, output size) as (W, H).

    An image of more than one tile gets a progress bar of its tiles (a 6000x4000 photo takes
    minutes on a CPU). A format that cannot keep the alpha or the 16 bits is said, not hidden.
    """
    image = read_image(job.source)
    run = as_upscaler(upscaler)
    scale, radius, align = run.scale, run.receptive_radius, run.tile_alignment
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

