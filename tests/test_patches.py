"""Training patches: aligned LR/HR crops, the 8 dihedral transforms, determinism and DDP sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repsr.data.images import Pair
from repsr.data.patches import PatchBatches, dihedral, load_pairs
from repsr.errors import UserError


def fake_pairs(scale: int = 3, n: int = 3) -> list[Pair]:
    """Random LR, HR = LR blown up into s x s blocks: a crop pair is aligned iff HR[::s, ::s] == LR.

    Blocks stay blocks under flips and rotations, so the check holds for all 8 transforms.
    """
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        lr = rng.integers(0, 256, (20 + 3 * i, 17 + i, 3), dtype=np.uint8)
        hr = np.ascontiguousarray(lr.repeat(scale, axis=0).repeat(scale, axis=1))
        pairs.append(Pair(hr, lr, f"img{i}"))
    return pairs


def test_lr_and_hr_patches_are_aligned_under_every_flip_and_rotation():
    s = 3
    ds = PatchBatches(fake_pairs(s), scale=s, patch_size=8, batch_size=16)
    for i in range(4):
        lr, hr = ds[i]
        assert lr.shape == (16, 3, 8, 8) and hr.shape == (16, 3, 24, 24) and lr.dtype == torch.uint8
        assert torch.equal(hr[:, :, ::s, ::s], lr)


def test_dihedral_gives_eight_distinct_transforms():
    a = np.arange(12).reshape(3, 4, 1)
    outs = {dihedral(a, k).tobytes() + bytes(dihedral(a, k).shape) for k in range(8)}
    assert len(outs) == 8


def test_batches_are_a_pure_function_of_seed_and_iteration():
    a, b = PatchBatches(fake_pairs(), 3, 8, 4, seed=5), PatchBatches(fake_pairs(), 3, 8, 4, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a[7], b[7], strict=True))
    b[3]  # touching other indices (other epochs' permutations) changes nothing
    assert torch.equal(a[7][0], b[7][0])
    assert not torch.equal(a[7][0], a[8][0])
    assert not torch.equal(a[7][0], PatchBatches(fake_pairs(), 3, 8, 4, seed=6)[7][0])
    calib = PatchBatches(fake_pairs(), 3, 8, 4, seed=5, stream=1)
    assert not torch.equal(a[7][0], calib[7][0])


def test_ranks_split_the_global_batch_like_a_distributed_sampler():
    whole = PatchBatches(fake_pairs(), 3, 8, 6, seed=1)[2]
    halves = [PatchBatches(fake_pairs(), 3, 8, 3, seed=1, rank=r, world_size=2)[2] for r in range(2)]
    for k in range(2):
        assert torch.equal(torch.cat([h[k] for h in halves]), whole[k])


def test_every_image_is_drawn_once_per_epoch():
    pairs = fake_pairs(n=3)
    ds = PatchBatches(pairs, 3, 8, 1, seed=2)
    assert sorted(ds._image_index(j) for j in range(3)) == [0, 1, 2]
    assert sorted(ds._image_index(j) for j in range(3, 6)) == [0, 1, 2]


def test_real_images_lr_made_once_from_the_whole_image(data_dir, tmp_path):
    from repsr.imageio import read_image

    pairs = load_pairs([str(data_dir / "Set5")], 2, 16)
    assert [p.name for p in pairs] == sorted(p.name for p in (data_dir / "Set5" / "HR").iterdir())
    lr_ref = np.rint(read_image(data_dir / "Set5" / "LR_bicubic" / "X2" / "birdx2.png").rgb * 255).astype(np.uint8)
    bird = next(p for p in pairs if p.name == "bird.png")
    assert np.array_equal(bird.lr, lr_ref)  # MATLAB-exact LR of the mod-cropped image
    assert bird.hr.shape[:2] == (2 * lr_ref.shape[0], 2 * lr_ref.shape[1])
    with pytest.raises(UserError, match="patch_size"):
        load_pairs([str(data_dir / "Set5")], 4, 1000)
    with pytest.raises(UserError, match="not found"):
        load_pairs([str(tmp_path / "nope")], 2, 16)


def test_crops_are_aligned_to_the_exact_hr_pixel_without_augmentation():
    """Random HR, LR = HR[::s, ::s]: catches offsets smaller than one LR pixel too."""
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (60, 45, 3), dtype=np.uint8)
    pair = Pair(hr, np.ascontiguousarray(hr[::3, ::3]), "random")
    lr_patch, hr_patch = PatchBatches([pair], 3, 8, 16, augment=False)[0]
    assert torch.equal(hr_patch[:, :, ::3, ::3], lr_patch)


def _sized_pairs(sides: list[int], scale: int = 2) -> list[Pair]:
    """Images of uniform value ``i`` so a patch tells which image it came from."""
    pairs = []
    for i, side in enumerate(sides):
        lr = np.full((side, side, 3), i, dtype=np.uint8)
        pairs.append(Pair(np.ascontiguousarray(lr.repeat(scale, 0).repeat(scale, 1)), lr, f"img{i}"))
    return pairs


def test_area_sampling_draws_images_in_proportion_to_their_patch_positions():
    pairs = _sized_pairs([8, 8, 71])  # patch 8: 1, 1 and 64^2 = 4096 positions
    ds = PatchBatches(pairs, 2, 8, 64, seed=3, sampling="area")
    drawn = np.concatenate([ds[i][0][:, 0, 0, 0].numpy() for i in range(40)])
    share_large = np.mean(drawn == 2)
    assert share_large > 0.99  # expected 4096 / 4098
    uniform = PatchBatches(pairs, 2, 8, 64, seed=3)
    drawn = np.concatenate([uniform[i][0][:, 0, 0, 0].numpy() for i in range(40)])
    assert abs(np.mean(drawn == 2) - 1 / 3) < 0.05


def test_area_sampling_is_deterministic_and_splits_ranks_like_one_process():
    pairs = _sized_pairs([10, 20, 30])
    a = PatchBatches(pairs, 2, 8, 6, seed=1, sampling="area")
    b = PatchBatches(pairs, 2, 8, 6, seed=1, sampling="area")
    assert all(torch.equal(x, y) for x, y in zip(a[5], b[5], strict=True))
    halves = [PatchBatches(pairs, 2, 8, 3, seed=1, rank=r, world_size=2, sampling="area")[5] for r in range(2)]
    for k in range(2):
        assert torch.equal(torch.cat([h[k] for h in halves]), a[5][k])
    with pytest.raises(ValueError, match="sampling"):
        PatchBatches(pairs, 2, 8, 6, sampling="pixels")


def test_mixed_degradation_gives_each_image_once_per_kind_sharing_its_hr(data_dir):
    from repsr.data.patches import make_lr
    from repsr.train.config import load_train_config

    clean = load_pairs([str(data_dir / "Set5")], 3, 16, "bicubic")
    ntire = load_pairs([str(data_dir / "Set5")], 3, 16, "ntire")
    mixed = load_pairs([str(data_dir / "Set5")], 3, 16, "mixed")
    assert [p.name for p in mixed] == [n for p in clean for n in (p.name, p.name)]
    for i, (c, n) in enumerate(zip(clean, ntire, strict=True)):
        a, b = mixed[2 * i], mixed[2 * i + 1]
        assert a.hr is b.hr and np.array_equal(a.hr, c.hr)  # one HR array for both kinds
        assert np.array_equal(a.lr, c.lr) and np.array_equal(b.lr, n.lr)
        assert np.array_equal(b.lr, make_lr(c.hr, 3, "ntire"))
    config = load_train_config(None, ["data.degradation=mixed", f"data.train=[{data_dir / 'Set5'}]"])
    assert config.data.degradation == "mixed"
