"""PSNR/SSIM follow the field's convention: hand-computed values and scikit-image as the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repsr.metrics import gaussian_window, psnr, rgb_to_y, ssim


def _pair(seed: int = 0, shape=(40, 37, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-20, 21, shape)
    return np.clip(hr.astype(int) + noise, 0, 255).astype(np.uint8), hr


def test_known_y_values():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(img)[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966],
                               rtol=0, atol=1e-12)


def test_constant_offset_gives_known_psnr():
    hr = np.full((20, 20), 100, dtype=np.uint8)
    sr = hr + np.uint8(5)
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)
    # On RGB the Y offset is 5 * (65.481 + 128.553 + 24.966) / 255 = 5 * 219 / 255.
    rgb_hr = np.full((20, 20, 3), 100, dtype=np.uint8)
    expected_y = 10 * math.log10(255**2 / (5 * 219 / 255) ** 2)
    assert psnr(rgb_hr + np.uint8(5), rgb_hr, crop_border=2) == pytest.approx(expected_y, abs=1e-9)
    assert psnr(rgb_hr + np.uint8(5), rgb_hr, y_channel=False) == pytest.approx(psnr(sr, hr), abs=1e-12)


def test_identical_images_give_inf_and_one():
    _, hr = _pair()
    assert psnr(hr, hr, 4) == math.inf
    assert ssim(hr, hr, 4) == pytest.approx(1.0, abs=1e-12)
    assert ssim(hr, hr, 4, y_channel=False) == pytest.approx(1.0, abs=1e-12)


def test_crop_border_only_looks_inside():
    hr = np.full((30, 30, 3), 50, dtype=np.uint8)
    sr = hr.copy()
    sr[:3] = 0
    sr[:, -3:] = 255
    assert psnr(sr, hr, crop_border=3) == math.inf
    assert psnr(sr, hr, crop_border=2) < 30


def test_gray_is_scored_on_gray_values_not_y_of_rgb():
    sr, hr = _pair(shape=(32, 32))
    mse = np.mean((sr.astype(float) - hr.astype(float)) ** 2)
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)
    assert psnr(sr[:, :, None], hr[:, :, None]) == pytest.approx(psnr(sr, hr), abs=1e-12)
    rgb = psnr(np.repeat(sr[:, :, None], 3, 2), np.repeat(hr[:, :, None], 3, 2))
    assert rgb == pytest.approx(psnr(sr, hr) - 20 * math.log10(219 / 255), abs=1e-9)


def test_gaussian_window_is_normalised_11_tap_sigma_1_5():
    g = gaussian_window()
    assert g.shape == (11,) and g.sum() == pytest.approx(1.0, abs=1e-15)
    assert g[5] / g[4] == pytest.approx(math.exp(1 / (2 * 1.5**2)), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scikit_image_on_y_and_rgb(seed):
    skm = pytest.importorskip("skimage.metrics")
    skc = pytest.importorskip("skimage.color")
    sr, hr = _pair(seed, shape=(45, 52, 3))
    c = 3
    ya = skc.rgb2ycbcr(sr)[c:-c, c:-c, 0]
    yb = skc.rgb2ycbcr(hr)[c:-c, c:-c, 0]
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert ssim(sr, hr, c) == pytest.approx(skm.structural_similarity(ya, yb, **kw), abs=1e-6)
    assert psnr(sr, hr, c) == pytest.approx(skm.peak_signal_noise_ratio(yb, ya, data_range=255), abs=1e-6)
    a, b = sr[c:-c, c:-c].astype(float), hr[c:-c, c:-c].astype(float)
    expected = skm.structural_similarity(a, b, channel_axis=2, **kw)
    assert ssim(sr, hr, c, y_channel=False) == pytest.approx(expected, abs=1e-6)


def test_rejects_mismatched_or_float_inputs():
    sr, hr = _pair()
    with pytest.raises(ValueError, match="shape"):
        psnr(sr[:-1], hr)
    with pytest.raises(ValueError, match="uint8"):
        ssim(sr.astype(np.float32), hr)
    with pytest.raises(ValueError, match="SSIM needs"):
        ssim(sr[:14, :14], hr[:14, :14], crop_border=2)


def test_batch_psnr_is_the_mean_of_per_image_rgb_psnr_on_unrounded_values():
    import torch

    from repsr.metrics import batch_psnr

    hr = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    sr = hr.clone()
    sr[0] += 0.1  # MSE 0.01 -> 20 dB
    sr[1] += 0.01  # MSE 1e-4 -> 40 dB
    assert batch_psnr(sr, hr) == pytest.approx(30.0, abs=1e-9)
    assert batch_psnr(hr, hr) == pytest.approx(120.0)  # floored, finite
