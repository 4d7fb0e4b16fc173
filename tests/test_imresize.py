"""imresize must give MATLAB's pixels: every shared LR file bit-exactly, real MATLAB floats to 1e-12."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import repsr
from repsr.data import degrade, imresize, matlab_bicubic, modcrop
from repsr.data.imresize import contributions

SETS = ("Set5", "Set14", "B100")


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _lr_files(data_dir: Path, scales: tuple[int, ...]) -> list[tuple[Path, Path, int]]:
    found = []
    for name in SETS:
        for s in scales:
            for lr in sorted((data_dir / name / "LR_bicubic" / f"X{s}").glob("*.png")):
                found.append((data_dir / name / "HR" / lr.name.replace(f"x{s}.png", ".png"), lr, s))
    return found


def test_uint8_reproduces_every_shared_lr_file(data_dir):
    files = _lr_files(data_dir, (2, 3, 4))
    assert len(files) == 3 * (5 + 14 + 100)
    wrong = []
    for hr_path, lr_path, s in files:
        out = imresize(modcrop(_read(hr_path), s), 1 / s)
        lr = _read(lr_path)
        if out.shape != lr.shape or not np.array_equal(out, lr):
            wrong.append(lr_path.name)
    assert wrong == []


def test_set5_x8_files_are_the_round_once_float_path(data_dir):
    """Set5's X8 files (from another repo) were resized in double and rounded once, not per pass."""
    files = _lr_files(data_dir, (8,))
    if not files:
        pytest.skip("no Set5 X8 files in this copy of the data")
    for hr_path, lr_path, _ in files:
        hr = modcrop(_read(hr_path), 8)
        out = np.clip(np.floor(imresize(hr.astype(np.float64), 1 / 8) + 0.5), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(out, _read(lr_path))


def _matlab_inputs(folder: Path) -> dict[str, np.ndarray]:
    topleft = np.zeros((4, 4))
    topleft[0, 0], topleft[1, 0], topleft[0, 1], topleft[0, 3] = 100, 10, 1, 100
    bottomright = np.zeros((4, 4))
    bottomright[3, 3], bottomright[2, 3], bottomright[3, 2], bottomright[3, 0] = 100, 10, 1, 100
    square = np.arange(64, dtype=np.float64).reshape(8, 8)
    big = np.arange(225, dtype=np.float64).reshape(15, 15)
    return {
        "down_down_small": np.arange(16, dtype=np.float64).reshape(4, 4), "down_down": square,
        "down_down_irregular": square, "up_up_irregular": square, "down_down_x2": square,
        "down_down_x4": square, "down_down_x3": big, "down_down_x5": big,
        "up_up_topleft": topleft, "up_up_bottomright": bottomright,
        "down_down_butterfly_irregular": _read(folder / "butterfly.png").astype(np.float64) / 255.0,
    }


def test_float_matches_real_matlab_outputs(data_dir):
    scipy_io = pytest.importorskip("scipy.io")
    folder = data_dir / "matlab_imresize"
    inputs = _matlab_inputs(folder)
    mats = sorted(folder.glob("*.mat"))
    assert len(mats) == 16
    for mat in mats:
        expected = scipy_io.loadmat(mat)[mat.stem]
        base, aa = mat.stem.rsplit("_", 1)
        out = imresize(inputs[base], output_shape=expected.shape[:2], antialiasing=aa == "aa")
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12, err_msg=mat.stem)


def test_contributions_weights_sum_to_one_and_mirror_at_borders():
    weights, indices = contributions(5, 10, 2.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-15)
    assert indices.min() == 0 and indices.max() == 4
    # Output pixel 1 samples u = 0.75: taps at 1-based -1, 0 mirror to 0-based 1, 0.
    assert list(indices[0, :2]) == [1, 0]


def test_constant_image_stays_constant_for_any_scale():
    img = np.full((13, 17, 3), 77, dtype=np.uint8)
    for scale in (0.25, 1 / 3, 0.7, 1.5, 2, 3.3):
        out = imresize(img, scale)
        assert out.dtype == np.uint8
        assert out.shape[:2] == (int(np.ceil(13 * scale - 1e-9)), int(np.ceil(17 * scale - 1e-9)))
        assert np.all(out == 77)


def test_gray_equals_each_channel_of_rgb_and_float32_keeps_dtype():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (21, 18, 3), dtype=np.uint8)
    out = imresize(rgb, 0.5)
    for c in range(3):
        np.testing.assert_array_equal(imresize(rgb[:, :, c], 0.5), out[:, :, c])
    f = imresize(rgb.astype(np.float32) / 255, 2.5)
    assert f.dtype == np.float32 and f.shape == (53, 45, 3)


def test_uint8_is_rounded_half_away_and_saturated():
    """An overshooting edge must clip to 0/255, and the result equal the float path rounded per pass."""
    img = np.zeros((8, 8), dtype=np.uint8)
    img[:, 4:] = 255
    out = imresize(img, 3)
    flt = imresize(img.astype(np.float64), 3)
    assert flt.max() > 255 and flt.min() < 0
    np.testing.assert_array_equal(out, np.clip(np.floor(flt + 0.5), 0, 255).astype(np.uint8))


def test_exported_at_top_level_and_degrade_pairs_with_modcrop():
    assert repsr.imresize is imresize
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (38, 41, 3), dtype=np.uint8)
    np.testing.assert_array_equal(degrade(hr, 4, "bicubic"), imresize(modcrop(hr, 4), 0.25))
    np.testing.assert_array_equal(matlab_bicubic(hr, 4), imresize(hr[:36, :40], 0.25))
    ntire = degrade(hr, 3, "ntire")
    plain = degrade(hr, 3, "ntire", jpeg_quality=0)
    assert ntire.shape == plain.shape == (12, 13, 3)
    assert not np.array_equal(ntire, plain)  # the JPEG step changed pixels
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(hr, 2, "gaussian")  # type: ignore[arg-type]
