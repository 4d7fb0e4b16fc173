"""MATLAB's ``imresize(img, scale, 'bicubic')``, bit-exact, vectorised with numpy.

Published SR numbers use LR images made by MATLAB: cubic kernel with a = -0.5, antialiasing when
shrinking (the kernel is stretched by 1/scale), symmetric border handling, the first (row) axis
resized before the second, and for integer images every pass rounded (half away from zero) and
saturated to the input type, because MATLAB's resize kernel returns the class of its input.
Pillow, OpenCV and ``torch`` bicubic all differ from this (SPEC section 4).

Each axis is a sparse linear map: output pixel ``i`` is ``sum_p w[i, p] * x[idx[i, p]]`` over a
handful of taps ``p``. The weights and indices are computed once per axis, exactly as MATLAB's
``contributions`` does, and applied as one gather-multiply-add per tap (no loops over pixels).
"""

from __future__ import annotations

import math

import numpy as np

# A pass is applied in column slices of about this many float64 values: the accumulator then stays
# in cache across taps (measured ~1.5x faster than whole-image passes) and memory stays bounded.
_CHUNK_VALUES = 1 << 18


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    kernel: np.ndarray = near + far
    return kernel


def contributions(in_length: int, out_length: int, scale: float,
                  antialiasing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(out, P)`` and 0-based source indices ``(out, P)`` for one axis, as MATLAB computes them.

    Output pixel ``x`` (1-based) samples the input at ``u = x / scale + 0.5 (1 - 1 / scale)``.
    When shrinking with antialiasing the kernel is widened by ``1 / scale`` (and scaled down), so
    each output averages over the input pixels it covers. Out-of-range taps are mirrored
    (``[1..n, n..1]``, i.e. symmetric padding); all-zero tap columns are dropped.
    """
    width = 4.0
    shrink = scale < 1 and antialiasing
    if shrink:
        width = width / scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    dist = u[:, None] - indices
    weights = scale * cubic(scale * dist) if shrink else cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _finish(acc: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round half away from zero and saturate for integer types (MATLAB's casting); else cast."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.floor(acc + 0.5), info.min, info.max).astype(dtype)
    return acc.astype(dtype)


def _resize_first_axis(x: np.ndarray, weights: np.ndarray, indices: np.ndarray,
                       dtype: np.dtype) -> np.ndarray:
    """Apply one axis' ``(out, P)`` map along axis 0 of ``x`` (shape ``(n, m)``), in column slices."""
    out = np.empty((weights.shape[0], x.shape[1]), dtype=dtype)
    step = max(1, _CHUNK_VALUES // max(1, weights.shape[0]))
    for start in range(0, x.shape[1], step):
        part = x[:, start:start + step]
        acc = np.zeros((weights.shape[0], part.shape[1]), dtype=np.float64)
        # Taps in MATLAB's order, so the float64 sums (and hence .5 ties) match its loop.
        for p in range(weights.shape[1]):
            acc += weights[:, p:p + 1] * part[indices[:, p]]
        out[:, start:start + step] = _finish(acc, dtype)
    return out


def _output_shape(shape: tuple[int, int], scale: float | None,
                  output_shape: tuple[int, int] | None) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output ``(H, W)`` and per-axis scales, the way MATLAB derives one from the other."""
    if output_shape is not None:
        out = (int(output_shape[0]), int(output_shape[1]))
        if min(out) < 1:
            raise ValueError(f"output shape must be positive, got {output_shape}")
        return out, (out[0] / shape[0], out[1] / shape[1])
    if scale is None or not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be a positive number, got {scale}")
    # ceil(n * scale) with a guard against 1/3-style round-off pushing an exact size up by one.
    height, width = (max(1, math.ceil(n * scale - 1e-9)) for n in shape)
    return (height, width), (float(scale), float(scale))


def imresize(img: np.ndarray, scale: float | None = None, *, output_shape: tuple[int, int] | None = None,
             antialiasing: bool = True) -> np.ndarray:
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')``; returns the input's dtype.

    ``img``: (H, W) or (H, W, C), uint8/uint16 (rounded half away from zero and saturated after
    each axis, like MATLAB) or float (computed in float64, returned in the input's float type).
    ``scale`` < 1 shrinks (e.g. ``1/4``; output ``ceil(H * scale)``), > 1 enlarges; or give
    ``output_shape=(H, W)`` instead, which sets each axis' scale to out / in as MATLAB does.

    Rounding once instead (``np.floor(imresize(img.astype(float), s) + 0.5)``) gives MATLAB's
    ``im2uint8(imresize(im2double(img), s))``: Set5's X8 LR files were made that way.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {img.shape}")
    integer = np.issubdtype(img.dtype, np.integer)
    if img.dtype == np.bool_ or not (integer or np.issubdtype(img.dtype, np.floating)):
        raise ValueError(f"unsupported image dtype {img.dtype}")
    dtype = img.dtype if integer or img.dtype == np.float32 else np.dtype(np.float64)
    (out_h, out_w), (scale_h, scale_w) = _output_shape(img.shape[:2], scale, output_shape)
    h, w = img.shape[:2]
    rest = img.shape[2:]
    x = img.reshape(h, -1)
    # MATLAB resizes the axis with the smaller scale first; rows first when they are equal.
    order = ("h", "w") if scale_h <= scale_w else ("w", "h")
    for axis in order:
        if axis == "h":
            wts, idx = contributions(h, out_h, scale_h, antialiasing)
            x = _resize_first_axis(x, wts, idx, dtype)
        else:
            cur_h = x.shape[0]
            planes = x.reshape(cur_h, w, -1).transpose(1, 0, 2).reshape(w, -1)
            wts, idx = contributions(w, out_w, scale_w, antialiasing)
            planes = _resize_first_axis(planes, wts, idx, dtype)
            x = planes.reshape(out_w, cur_h, -1).transpose(1, 0, 2).reshape(cur_h, -1)
    return np.ascontiguousarray(x.reshape(out_h, out_w, *rest))
