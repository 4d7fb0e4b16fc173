"""A small, cached validation set that prices a pruning candidate in one batched forward pass.

Global pruning evaluates every remaining channel every round (80 candidates for a 40/40 net), so
validation must be cheap on two CPU cores. Each image is degraded once from its *whole* HR image
(so JPEG blocks and borders are realistic), then an aligned centre crop of ``crop`` LR pixels is
kept: all crops share one shape and stack into a single batch. The score is mean RGB PSNR over
images on unrounded, clamped outputs with no border crop -- the NTIRE protocol's colour space, and
free of the uint8 rounding noise that would drown differences of a few thousandths of a dB.
"""

from __future__ import annotations

import torch
from torch import nn

from repsr.data.crops import ValBatch, load_val_batch
from repsr.inference import super_resolve
from repsr.metrics import batch_psnr as rgb_batch_psnr


@torch.no_grad()
def batch_psnr(model: nn.Module, val: ValBatch) -> float:
    """Mean per-image RGB PSNR (dB) of ``model`` on ``val``; honours ``config.bgr``."""
    return rgb_batch_psnr(super_resolve(model, val.lr), val.hr)


def bicubic_psnr(val: ValBatch) -> float:
    """The same score for PyTorch bicubic (a = -0.75) upscaling: the reference a pruned net must beat."""
    scale = val.hr.shape[-1] // val.lr.shape[-1]
    sr = torch.nn.functional.interpolate(val.lr, scale_factor=scale, mode="bicubic").clamp(0, 1)
    return rgb_batch_psnr(sr, val.hr)


__all__ = ["ValBatch", "batch_psnr", "bicubic_psnr", "load_val_batch"]
