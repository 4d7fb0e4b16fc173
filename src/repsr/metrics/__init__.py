"""PSNR and SSIM as SR papers compute them (SPEC section 4), on uint8 numpy images.

The convention: both images uint8 (the SR output rounded first), ``crop_border`` pixels (= the
scale) removed on every side, then scored on the float Y channel of BT.601 YCbCr,
``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for RGB in [0, 1] (BasicSR's Y, not rounded),
or on RGB with ``y_channel=False``. A single-channel image is scored on its gray values as they
are, like the classic MATLAB scripts: converting it to RGB and then Y would scale its error by
219/255 (+1.32 dB on Set14's ``bridge``). SSIM is Wang et al.'s with an 11x11 Gaussian window
(sigma 1.5), K1 = 0.01, K2 = 0.03, over the valid region, averaged over channels for RGB; it
equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)``.

:func:`batch_psnr` is a deliberately different protocol for ranking many candidates fast (pruning):
per-image RGB PSNR of *unrounded* float batches, no border crop, free of uint8 rounding noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_PEAK = 255.0


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Float64 Y in [16, 235] of a uint8 (H, W, 3) RGB image (BasicSR's ``rgb2ycbcr(..., y_only=True)``)."""
    return (img.astype(np.float64) / _PEAK) @ Y_WEIGHTS + 16.0


def _planes(img: np.ndarray, y_channel: bool) -> np.ndarray:
    """(H, W, C) float64 planes to score: gray as is, Y of RGB, or the RGB channels."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {img.shape}")
    if img.shape[2] == 3 and y_channel:
        return rgb_to_y(img)[:, :, None]
    return img.astype(np.float64)


def _prepare(sr: np.ndarray, hr: np.ndarray, crop_border: int,
             y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    if sr.shape != hr.shape:
        raise ValueError(f"images differ in shape: {sr.shape} vs {hr.shape}")
    if sr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (round the SR output first), got {sr.dtype} and {hr.dtype}")
    a, b = _planes(sr, y_channel), _planes(hr, y_channel)
    if crop_border > 0:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.size == 0:
        raise ValueError(f"crop_border {crop_border} leaves nothing of a {sr.shape[:2]} image")
    return a, b


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB (peak 255) of uint8 ``sr`` against ``hr``; ``inf`` for identical images."""
    a, b = _prepare(sr, hr, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_PEAK * _PEAK / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian taps (``cv2.getGaussianKernel(11, 1.5)``); the window is their product."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    taps: np.ndarray = g / g.sum()
    return taps


def _filter_valid(img: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation of (H, W, C) with ``taps`` on both axes, valid region only."""
    k = taps.size
    h, w = img.shape[0] - k + 1, img.shape[1] - k + 1
    rows = sum(taps[i] * img[i:i + h] for i in range(k))
    out: np.ndarray = sum(taps[j] * rows[:, j:j + w] for j in range(k))
    return out


def _ssim_planes(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over the valid region and the channels of two float64 (H, W, C) arrays."""
    taps = gaussian_window()
    if min(a.shape[:2]) < taps.size:
        raise ValueError(f"SSIM needs at least {taps.size}x{taps.size} px after cropping, not {a.shape[:2]}")
    c1, c2 = (0.01 * _PEAK) ** 2, (0.03 * _PEAK) ** 2
    mu_a, mu_b = _filter_valid(a, taps), _filter_valid(b, taps)
    var_a = _filter_valid(a * a, taps) - mu_a * mu_a
    var_b = _filter_valid(b * b, taps) - mu_b * mu_b
    cov = _filter_valid(a * b, taps) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den, axis=(0, 1)).mean())


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """SSIM of uint8 ``sr`` against ``hr`` (1.0 for identical images); RGB averages the three channels."""
    a, b = _prepare(sr, hr, crop_border, y_channel)
    return _ssim_planes(a, b)


def batch_psnr(sr: torch.Tensor, hr: torch.Tensor) -> float:
    """Mean over images of RGB PSNR (dB) of float batches (N, C, H, W) in [0, 1], unrounded, no crop.

    The per-image MSE is floored at 1e-12 (120 dB) so an exact reconstruction stays finite.
    """
    mse = (sr - hr).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((-10.0 * torch.log10(mse)).mean())


__all__ = ["batch_psnr", "gaussian_window", "psnr", "rgb_to_y", "ssim"]
