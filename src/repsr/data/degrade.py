"""Making LR images from HR ones: the field's MATLAB bicubic, and NTIRE 2023's Pillow bicubic + JPEG.

Training and evaluation must make LR pixels the same way the published numbers did:
``"bicubic"`` is MATLAB ``imresize(modcrop(HR, s), 1/s, 'bicubic')`` on uint8 (SPEC section 4);
``"ntire"`` is the NTIRE 2023 real-time track's degradation used by Bicubic++: Pillow bicubic
downscaling, then a JPEG round trip at quality 90 (Pillow's encoder, default 4:2:0 chroma).
Both crop HR to a multiple of the scale first, so ``modcrop(hr, s)`` is the matching ground truth.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image

from repsr.data.imresize import imresize

DegradeKind = Literal["bicubic", "ntire"]
# A training set's LR: one kind, or "mixed" = every training image twice, once per kind (the same HR array), so
# a net learns both protocols at once; evaluation and validation always use one kind.
TrainDegradation = Literal["bicubic", "ntire", "mixed"]


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``img`` (H, W[, C]) from the bottom/right so both sides are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _check(hr: np.ndarray, scale: int) -> np.ndarray:
    if hr.dtype != np.uint8 or hr.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, C) image, got {hr.dtype} {hr.shape}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    hr = modcrop(hr, int(scale))
    if min(hr.shape[:2]) < 1:
        raise ValueError(f"image {hr.shape[:2]} is smaller than the scale {scale}")
    return hr


def matlab_bicubic(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(modcrop(hr, scale), 1/scale, 'bicubic')`` on uint8: the benchmark sets' LR pixels."""
    hr = _check(hr, scale)
    return imresize(hr, 1.0 / scale)


def pillow_bicubic_jpeg(hr: np.ndarray, scale: int, jpeg_quality: int = 90) -> np.ndarray:
    """NTIRE 2023 real-time SR's LR: Pillow bicubic downscale of ``modcrop(hr)``, then JPEG.

    ``jpeg_quality`` <= 0 or > 100 skips the JPEG step (plain Pillow bicubic).
    """
    hr = _check(hr, scale)
    h, w = hr.shape[:2]
    im = Image.fromarray(hr).resize((w // scale, h // scale), Image.Resampling.BICUBIC)
    if 0 < jpeg_quality <= 100:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(jpeg_quality))
        buf.seek(0)
        with Image.open(buf) as decoded:
            im = decoded.convert(im.mode)
    return np.asarray(im).copy()


def degrade(hr: np.ndarray, scale: int, kind: DegradeKind = "bicubic", jpeg_quality: int = 90) -> np.ndarray:
    """LR (uint8, same channels) of a uint8 HR image by the named degradation.

    ``"bicubic"``: :func:`matlab_bicubic` (``jpeg_quality`` unused); ``"ntire"``:
    :func:`pillow_bicubic_jpeg`. The LR is ``(H // scale, W // scale)``; pair it with
    ``modcrop(hr, scale)``.
    """
    if kind == "bicubic":
        return matlab_bicubic(hr, scale)
    if kind == "ntire":
        return pillow_bicubic_jpeg(hr, scale, jpeg_quality)
    raise ValueError(f"unknown degradation '{kind}' (choose bicubic or ntire)")
