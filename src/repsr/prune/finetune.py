"""A small fine-tuning loop for the pruning and bias-removal stages of Bicubic++.

Between pruning rounds the net changes shape, so it is trained here in-process rather than through
a full ``repsr train`` run (which would re-read the data and re-create its state every round).
The recipe is Bicubic++'s own: MSE loss, Adam, learning rate decayed linearly, random aligned
patches with the 8 flips/rotations from :mod:`repsr.data.patches` (decoded and degraded once).
BGR-trained nets (``config.bgr``) see their patches channel-flipped, as at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from repsr.data.patches import PatchBatches, load_pairs, to_float


@dataclass(frozen=True)
class FinetuneConfig:
    """Data and optimisation of one fine-tuning call (``iters`` iterations, linear lr decay)."""

    train: tuple[str, ...]
    scale: int
    iters: int = 200
    batch_size: int = 16
    patch_size: int = 48
    lr: float = 1e-4
    final_lr_ratio: float = 0.1
    degradation: str = "ntire"
    jpeg_quality: int = 90
    seed: int = 0


class Finetuner:
    """Callable ``model -> model`` that trains ``iters`` steps; data is loaded once, batches never repeat."""

    def __init__(self, config: FinetuneConfig) -> None:
        self.config = config
        pairs = load_pairs(list(config.train), config.scale, config.patch_size, config.degradation,
                           config.jpeg_quality)
        self.batches = PatchBatches(pairs, config.scale, config.patch_size, config.batch_size, seed=config.seed)
        self.step = 0  # global batch index: successive calls continue the data stream

    def __call__(self, model: nn.Module, iters: int | None = None) -> nn.Module:
        cfg = self.config
        iters = cfg.iters if iters is None else iters
        if iters <= 0:
            return model
        device = next(model.parameters()).device
        flip = bool(getattr(model.config, "bgr", False))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        decay = lambda i: 1.0 - (1.0 - cfg.final_lr_ratio) * i / max(iters - 1, 1)  # noqa: E731
        sched = torch.optim.lr_scheduler.LambdaLR(opt, decay)
        was_training = model.training
        model.train()
        for _ in range(iters):
            lr_u8, hr_u8 = self.batches[self.step]
            self.step += 1
            lr, hr = to_float(lr_u8, device), to_float(hr_u8, device)
            if flip:
                lr, hr = lr.flip(1), hr.flip(1)
            loss = nn.functional.mse_loss(model(lr), hr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        return model.train(was_training)


__all__ = ["FinetuneConfig", "Finetuner"]
