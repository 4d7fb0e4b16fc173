"""Optimizer and learning-rate schedule of a run (Adam + constant / cosine / linear / multistep).

The schedule is a pure function of the iteration wrapped in ``LambdaLR``, so its checkpointed
state is just counters and the rate after resume is computed by the same formula, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from repsr.train.config import TrainConfig


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """Multiplier of ``train.lr`` at step ``i`` (0-based) for the configured schedule."""
    o, iters, base = config.optim, config.train.iters, config.train.lr
    if o.schedule == "cosine":
        floor = min(o.min_lr / base, 1.0)
        return lambda i: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(i, iters) / iters))
    if o.schedule == "linear":
        floor = min(o.min_lr / base, 1.0)
        return lambda i: 1.0 - (1.0 - floor) * min(i, iters) / iters
    if o.schedule == "multistep":
        steps = sorted(round(m * iters) if isinstance(m, float) and m <= 1 else int(m) for m in o.milestones)
        return lambda i: o.gamma ** sum(i >= m for m in steps)
    return lambda i: 1.0


def build_optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """Adam over all parameters (frozen BN affine params simply get no gradient) and its schedule."""
    o = config.optim
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, betas=(o.betas[0], o.betas[1]),
                                 weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
    return optimizer, scheduler
