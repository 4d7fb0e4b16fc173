"""Aligned centre crops of degraded images, stacked into one batch: fast validation and calibration.

Global pruning prices every channel by a validation pass, and INT8 calibration needs model inputs
like the training data: both want a handful of images as one tensor. Each image is degraded once
from its *whole* HR image (so JPEG blocks and borders are realistic), then an aligned centre crop of
``crop`` LR pixels is kept, so all crops share one shape and stack into a single batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from repsr.data.degrade import DegradeKind, degrade, modcrop
from repsr.data.images import list_hr_images
from repsr.errors import UserError
from repsr.imageio import read_uint8


@dataclass(frozen=True)
class ValBatch:
    """Aligned crops: ``lr`` (N, 3, c, c) and ``hr`` (N, 3, s*c, s*c), float RGB in [0, 1]."""

    lr: Tensor
    hr: Tensor
    names: tuple[str, ...]


def _spread(files: list[Path], count: int | None) -> list[Path]:
    """``count`` files evenly spread over the sorted list (all when None)."""
    if count is None or count >= len(files):
        return files
    picks = np.linspace(0, len(files) - 1, count).round().astype(int)
    return [files[i] for i in picks]


def _crop_pair(hr: np.ndarray, lr: np.ndarray, scale: int, crop: int) -> tuple[np.ndarray, np.ndarray] | None:
    h, w = lr.shape[:2]
    if min(h, w) < crop:
        return None
    y, x = (h - crop) // 2 // 2 * 2, (w - crop) // 2 // 2 * 2  # even offsets keep the stride-2 grid
    return hr[scale * y:scale * (y + crop), scale * x:scale * (x + crop)], lr[y:y + crop, x:x + crop]


def load_val_batch(folders: list[str], scale: int, degradation: DegradeKind = "ntire", jpeg_quality: int = 90,
                   max_images: int | None = 8, crop: int = 96) -> ValBatch:
    """Degrade up to ``max_images`` HR images per folder and keep aligned ``crop`` x ``crop`` LR crops."""
    lrs, hrs, names = [], [], []
    for folder in folders:
        for path in _spread(list_hr_images([folder]), max_images):
            hr = modcrop(read_uint8(path, rgb=True), scale)
            pair = _crop_pair(hr, degrade(hr, scale, kind=degradation, jpeg_quality=jpeg_quality), scale, crop)
            if pair is not None:
                hrs.append(pair[0])
                lrs.append(pair[1])
                names.append(path.name)
    if not lrs:
        raise UserError(f"no validation image in {', '.join(map(str, folders))} has an LR side of {crop} px")

    def stack(items: list[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.stack(items)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()

    return ValBatch(stack(lrs), stack(hrs), tuple(names))
