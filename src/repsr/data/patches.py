"""Training patches: aligned random LR/HR crops with the 8 flips/rotations, indexed by iteration.

Why this shape:

* Every HR image is decoded once and its LR made once from the *whole* mod-cropped image (MATLAB
  bicubic, or the NTIRE degradation), both kept in memory as uint8. Patches are then aligned
  crops -- LR at ``(y, x)``, HR at ``(s*y, s*x)`` -- so no pixel is resized per patch and LR patches
  carry the true image context at their borders, exactly as in a full-image evaluation.
* Item ``i`` of :class:`PatchBatches` is the *whole batch of iteration i*, computed from
  ``(seed, i)`` alone. Data order is therefore a pure function of the iteration: resuming at
  iteration ``k`` replays exactly the batches an uninterrupted run would have seen, whether
  batches are built in-process or by DataLoader workers, and nothing needs checkpointing.
* Under DDP each rank takes its slice of the global batch ``i`` (like ``DistributedSampler``):
  N ranks of batch B see the same samples as one process of batch N*B.
* Images are drawn epoch by epoch (a seeded permutation per epoch), so every image is used once
  per ``len(images)`` samples, as with a shuffling sampler.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from repsr.data.degrade import DegradeKind, TrainDegradation, degrade, modcrop
from repsr.data.images import Pair, list_hr_images
from repsr.errors import UserError
from repsr.imageio import read_uint8

log = logging.getLogger(__name__)


def make_lr(hr: np.ndarray, scale: int, degradation: DegradeKind = "bicubic", jpeg_quality: int = 90) -> np.ndarray:
    """LR of a whole mod-cropped uint8 HR image (MATLAB bicubic by default, as the field does)."""
    return degrade(hr, scale, kind=degradation, jpeg_quality=jpeg_quality)


def _load_pairs_of(path: Path, scale: int, degradation: TrainDegradation, jpeg_quality: int) -> list[Pair]:
    """The image's pair, or for ``"mixed"`` one pair per kind sharing the HR array (memory: one more LR)."""
    hr = np.ascontiguousarray(modcrop(read_uint8(path, rgb=True), scale))
    kinds: tuple[DegradeKind, ...] = ("bicubic", "ntire") if degradation == "mixed" else (degradation,)
    return [Pair(hr, np.ascontiguousarray(make_lr(hr, scale, kind, jpeg_quality)), path.name) for kind in kinds]


def load_pairs(folders: list[str], scale: int, patch_size: int, degradation: TrainDegradation = "bicubic",
               jpeg_quality: int = 90, threads: int = 2) -> list[Pair]:
    """Decode every HR image once and make its LR (both kinds for ``"mixed"``, the image then counting twice);
    images smaller than one patch are skipped."""
    files = list_hr_images(folders)
    with ThreadPoolExecutor(max(1, threads)) as pool:  # decoding and resizing release the GIL
        pairs = [pair for made in pool.map(lambda p: _load_pairs_of(p, scale, degradation, jpeg_quality), files)
                 for pair in made]
    usable = [p for p in pairs if min(p.lr.shape[:2]) >= patch_size]
    if len(usable) < len(pairs):  # counted in images: a "mixed" image's two pairs share one HR array and LR size
        images, kept = len({id(p.hr) for p in pairs}), len({id(p.hr) for p in usable})
        log.warning("skipped %d of %d training images smaller than an LR patch of %d px",
                    images - kept, images, patch_size)
    if not usable:
        raise UserError(f"no training image has an LR side of at least {patch_size} px (train.patch_size)")
    return usable


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of an (H, W, C) array: rotate by ``k % 4`` quarter turns, flip if ``k >= 4``."""
    a = np.rot90(a, k % 4, axes=(0, 1))
    return a[:, ::-1] if k >= 4 else a


class PatchBatches(torch.utils.data.Dataset[tuple[Tensor, Tensor]]):
    """Map-style dataset whose item ``i`` is iteration ``i``'s batch ``(lr, hr)`` of uint8 tensors.

    ``lr`` is (B, 3, P, P) and ``hr`` (B, 3, sP, sP); convert with :func:`to_float` on the device
    (moving uint8 costs a quarter of float32). ``stream`` separates independent sample streams
    of the same data (0: training, 1: BN re-estimation batches).
    """

    def __init__(self, pairs: list[Pair], scale: int, patch_size: int, batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, augment: bool = True, stream: int = 0,
                 sampling: str = "image") -> None:
        if sampling not in ("image", "area"):
            raise ValueError(f"sampling must be 'image' or 'area', not {sampling!r}")
        self.pairs, self.scale, self.patch, self.batch = pairs, scale, patch_size, batch_size
        self.seed, self.rank, self.world, self.augment, self.stream = seed, rank, world_size, augment, stream
        self.sampling = sampling
        self._perms: dict[int, np.ndarray] = {}
        # "area": an image is drawn with probability proportional to its patch positions, so a set of
        # 2-megapixel photos is not sampled as often as one of 0.1-megapixel crops per pixel it holds
        positions = np.array([(p.lr.shape[0] - patch_size + 1) * (p.lr.shape[1] - patch_size + 1) for p in pairs],
                             dtype=np.float64)
        self._cumulative = np.cumsum(positions) / positions.sum()

    def __len__(self) -> int:
        return 2**62  # unbounded: indexed by iteration

    def _image_index(self, sample: int) -> int:
        n = len(self.pairs)
        epoch = sample // n
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, self.stream, 1, epoch]).permutation(n)
        return int(self._perms[epoch][sample % n])

    def _crop(self, pair: Pair, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, s = self.patch, self.scale
        h, w = pair.lr.shape[:2]
        y, x = int(u[0] * (h - p + 1)), int(u[1] * (w - p + 1))
        lr = pair.lr[y:y + p, x:x + p]
        hr = pair.hr[s * y:s * (y + p), s * x:s * (x + p)]
        if self.augment:
            k = int(u[2] * 8)
            lr, hr = dihedral(lr, k), dihedral(hr, k)
        return lr, hr

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        global_batch = self.batch * self.world
        draws = np.random.default_rng([self.seed, self.stream, 0, int(index)]).random((global_batch, 3))
        first = int(index) * global_batch + self.rank * self.batch
        if self.sampling == "area":  # a stream of its own: "image" batches stay what they always were
            picks = np.random.default_rng([self.seed, self.stream, 2, int(index)]).random(global_batch)
            chosen = np.minimum(np.searchsorted(self._cumulative, picks, side="right"), len(self.pairs) - 1)
        lrs, hrs = [], []
        for j in range(self.batch):
            k = self.rank * self.batch + j
            pair = self.pairs[int(chosen[k]) if self.sampling == "area" else self._image_index(first + j)]
            lr, hr = self._crop(pair, draws[k])
            lrs.append(lr)
            hrs.append(hr)
        return _stack(lrs), _stack(hrs)


def _stack(patches: list[np.ndarray]) -> Tensor:
    return torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).contiguous()


def to_float(batch: Tensor, device: torch.device | str, channels_last: bool = False) -> Tensor:
    """uint8 (B, 3, H, W) -> float32 in [0, 1] on ``device`` (optionally channels_last)."""
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


__all__ = ["PatchBatches", "dihedral", "load_pairs", "make_lr", "to_float"]
