"""The training-data audit: JPEG quality from the file, JPEG grids in pixels, noise and edges measured."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repsr.data.audit import (
    BLOCKY,
    audit_folder,
    audit_image,
    blockiness,
    edge_density,
    jpeg_quality,
    luma,
    noise_sigma,
)


def smooth_photo(h: int = 192, w: int = 256, seed: int = 0) -> Image.Image:
    """A photo-like image without any periodic structure: white noise low-passed in the Fourier domain
    (a Gaussian of 3 px), stretched to the full 8-bit range per channel."""
    noise = np.random.default_rng(seed).normal(size=(3, h, w))
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    smooth = np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * (np.pi * 3) ** 2 * (fy ** 2 + fx ** 2))).real
    lo, hi = smooth.min(axis=(1, 2), keepdims=True), smooth.max(axis=(1, 2), keepdims=True)
    return Image.fromarray(np.round(255 * (smooth - lo) / (hi - lo)).astype(np.uint8).transpose(1, 2, 0))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 97])
def test_jpeg_quality_is_read_from_the_files_own_table(quality: int) -> None:
    assert jpeg_quality(jpeg(smooth_photo(), quality)) == pytest.approx(quality, abs=1)
    assert jpeg_quality(smooth_photo()) is None  # not a JPEG file


@pytest.mark.parametrize("seed", range(4))
def test_a_jpeg_grid_is_found_in_the_pixels_even_saved_losslessly_and_cropped(seed: int) -> None:
    clean = smooth_photo(seed=seed)
    assert blockiness(luma(clean)) < 1.06
    for quality in (50, 85):
        compressed = jpeg(clean, quality).convert("RGB")
        assert blockiness(luma(compressed)) > BLOCKY
        shifted = compressed.crop((3, 5, compressed.width, compressed.height))  # the grid no longer at 0
        assert blockiness(luma(shifted)) > BLOCKY


def test_two_and_four_pixel_patterns_are_not_a_jpeg_grid() -> None:
    y = luma(smooth_photo())
    for period in (2, 4):
        striped = y.copy()
        striped[:, ::period] += 0.05  # a regular pattern lifting every period-th column (demosaicing, dither)
        assert blockiness(striped) < 1.06


def test_noise_sigma_reads_the_added_gaussian_noise_in_8_bit_levels() -> None:
    rng = np.random.default_rng(1)
    flat = np.full((200, 300), 0.5)
    assert noise_sigma(flat) == pytest.approx(0.0, abs=1e-9)
    for sigma in (2.0, 8.0):
        assert noise_sigma(flat + rng.normal(0, sigma / 255, flat.shape)) == pytest.approx(sigma, rel=0.05)


def test_edge_density_separates_line_art_from_smooth_photos() -> None:
    checker = np.kron(np.indices((16, 16)).sum(axis=0) % 2, np.ones((8, 8))).astype(np.float64)
    assert edge_density(checker) > 0.2
    assert edge_density(luma(smooth_photo())) < 0.02
    assert edge_density(np.zeros((2, 2))) == 0.0  # too small to measure: no edge, no error


def test_audit_folder_reports_each_image_and_the_jpeg_share_of_pixels(tmp_path: Path) -> None:
    folder = tmp_path / "set" / "HR"
    folder.mkdir(parents=True)
    smooth_photo(192, 256, seed=2).save(folder / "a_clean.png")
    jpeg(smooth_photo(128, 192, seed=3), 40).save(folder / "b_was_jpeg.png")  # a JPEG saved as PNG
    smooth_photo(64, 64, seed=4).save(folder / "c.jpg", quality=95)
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(folder / "d16.png")
    audit = audit_folder(tmp_path / "set")
    names = [Path(a.path).name for a in audit.images]
    assert names == ["a_clean.png", "b_was_jpeg.png", "c.jpg", "d16.png"]
    clean, was_jpeg, jpg, gray16 = audit.images
    assert not clean.jpeg_sourced and was_jpeg.jpeg_sourced and was_jpeg.jpeg_quality is None
    assert jpg.jpeg_quality == 95 and jpg.jpeg_sourced
    assert not gray16.jpeg_sourced and 0 <= gray16.edge_density <= 1
    pixels = [192 * 256, 128 * 192, 64 * 64, 64 * 64]
    assert audit.jpeg_share == pytest.approx((pixels[1] + pixels[2]) / sum(pixels))
    assert audit.megapixels == pytest.approx(sum(pixels) / 1e6)
    assert audit_image(folder / "a_clean.png") == clean
