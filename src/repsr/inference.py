"""Running a super-resolution model on one image tensor: channel order, precision, clamping.

Every command that produces SR pixels (eval, upscale, study) goes through :func:`super_resolve`,
so BGR-trained weights, clamping and no-grad handling live in one place.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def model_scale(model: nn.Module) -> int:
    return int(model.config.scale)  # type: ignore[union-attr]


@torch.no_grad()
def super_resolve(model: nn.Module, lr: Tensor) -> Tensor:
    """Upscale ``lr`` (N, 3, H, W) float RGB in [0, 1] -> (N, 3, sH, sW) clamped to [0, 1].

    Runs in the model's own dtype/device; flips to BGR and back for weights trained on BGR.
    """
    param = next(model.parameters())
    x = lr.to(device=param.device, dtype=param.dtype)
    bgr = bool(getattr(model.config, "bgr", False))
    if bgr:
        x = x.flip(1)
    y = model(x)
    if bgr:
        y = y.flip(1)
    return y.clamp_(0.0, 1.0).to(lr.dtype)
