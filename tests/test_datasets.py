"""Evaluation datasets: every layout finds the same pairs, LR on the fly equals the shipped files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from repsr.data import imresize, modcrop
from repsr.data.datasets import find_dataset, read_uint8
from repsr.errors import UserError
from repsr.imageio import write_image


def _edsr_copy(data_dir: Path, dst: Path, scale: int, names=("baby", "bird")) -> None:
    for n in names:
        (dst / "HR").mkdir(parents=True, exist_ok=True)
        (dst / "LR_bicubic" / f"X{scale}").mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / "Set5" / "HR" / f"{n}.png", dst / "HR")
        shutil.copy(data_dir / "Set5" / "LR_bicubic" / f"X{scale}" / f"{n}x{scale}.png",
                    dst / "LR_bicubic" / f"X{scale}")


def test_edsr_layout_pairs_hr_cropped_to_lr_times_scale(data_dir):
    ds = find_dataset(data_dir / "Set14", 3)
    assert ds.name == "Set14" and ds.layout == "edsr" and len(ds) == 14
    by_name = {s.name: s for s in ds}
    bridge = by_name["bridge"]
    assert bridge.hr.ndim == 2 and bridge.lr.ndim == 2  # grayscale stays gray
    for s in by_name.values():
        assert s.hr.shape[:2] == (s.lr.shape[0] * 3, s.lr.shape[1] * 3)


def test_hr_folder_makes_the_same_lr_as_the_files(data_dir):
    files = find_dataset(data_dir / "Set5", 4)
    folder = find_dataset(data_dir / "Set5" / "HR", 4)
    assert folder.name == "Set5" and folder.layout == "folder"
    assert all(p.lr_path is None for p in folder.pairs)
    for a, b in zip(files, folder, strict=True):
        np.testing.assert_array_equal(a.lr, b.lr)
        np.testing.assert_array_equal(a.hr, b.hr)


def test_div2k_and_paired_layouts(data_dir, tmp_path):
    hr = read_uint8(data_dir / "Set5" / "HR" / "bird.png")
    lr = imresize(modcrop(hr, 2), 0.5)
    div2k = tmp_path / "DIV2K"
    write_image(div2k / "DIV2K_valid_HR" / "0801.png", hr)
    write_image(div2k / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png", lr)
    paired = tmp_path / "pairs"
    write_image(paired / "GT" / "bird.png", hr)
    write_image(paired / "LQ" / "bird.png", lr)
    for root, layout in ((div2k, "div2k"), (paired, "paired")):
        ds = find_dataset(root, 2)
        assert ds.layout == layout and len(ds) == 1 and ds.pairs[0].lr_path is not None
        sample = next(iter(ds))
        np.testing.assert_array_equal(sample.lr, lr)
        np.testing.assert_array_equal(sample.hr, modcrop(hr, 2))


def test_missing_lr_file_and_bad_paths_are_user_errors(data_dir, tmp_path):
    _edsr_copy(data_dir, tmp_path / "mini", 2)
    (tmp_path / "mini" / "LR_bicubic" / "X2" / "birdx2.png").unlink()
    ds = find_dataset(tmp_path / "mini", 2)
    with pytest.raises(UserError, match="birdx2"):
        ds.load(next(p for p in ds.pairs if p.name == "bird"))
    with pytest.raises(UserError, match="no such file"):
        find_dataset(tmp_path / "absent", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        find_dataset(tmp_path / "empty", 2)


def test_sixteen_bit_rgba_and_cache(data_dir, tmp_path):
    hr = read_uint8(data_dir / "Set5" / "HR" / "butterfly.png")
    write_image(tmp_path / "deep.png", hr.astype(np.uint16) * 257)
    rgba = np.concatenate([hr, np.full(hr.shape[:2] + (1,), 128, np.uint8)], axis=2)
    write_image(tmp_path / "alpha.png", rgba)
    for name in ("deep.png", "alpha.png"):
        ds = find_dataset(tmp_path / name, 4, cache=True)
        sample = next(iter(ds))
        np.testing.assert_array_equal(sample.hr, hr)
        assert next(iter(ds)) is sample


def test_training_and_evaluation_find_the_same_hr_images_in_a_basicsr_folder(data_dir: Path, tmp_path: Path):
    from repsr.data.images import list_hr_images
    from repsr.data.patches import load_pairs

    gt = tmp_path / "set" / "GT"
    gt.mkdir(parents=True)
    for path in sorted((data_dir / "Set5" / "HR").iterdir())[:2]:
        (gt / path.name).write_bytes(path.read_bytes())
    evaluated = [p.hr_path for p in find_dataset(tmp_path / "set", 2).pairs]
    assert list_hr_images([tmp_path / "set"]) == evaluated == sorted(gt.iterdir())
    assert [p.name for p in load_pairs([str(tmp_path / "set")], 2, 8)] == [p.name for p in evaluated]


def test_read_uint8_rounds_16_bit_pixels_and_keeps_gray_single_channel(tmp_path: Path):
    from repsr.imageio import read_uint8, write_image

    pixels = np.arange(0, 65536, 4099, dtype=np.uint16)[:16].reshape(4, 4)
    write_image(tmp_path / "g16.png", pixels)
    gray = read_uint8(tmp_path / "g16.png")
    np.testing.assert_array_equal(gray, np.rint(pixels / 65535 * 255).astype(np.uint8))
    assert read_uint8(tmp_path / "g16.png", rgb=True).shape == (4, 4, 3)
    write_image(tmp_path / "c8.png", np.zeros((3, 5, 3), np.uint8))
    assert read_uint8(tmp_path / "c8.png").flags.writeable, "a caller may crop or modify what it read"
