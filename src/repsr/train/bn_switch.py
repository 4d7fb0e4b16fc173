"""RepSR's BN switch: re-estimate population statistics precisely, then freeze them for good.

Why re-estimate instead of keeping the running averages: BN's exponential moving average
(momentum 0.1) mostly reflects the last few dozen batches and lags behind weights that kept moving,
so the statistics the frozen network would use are not those of the current weights. At the
switch we reset every BN's running statistics and average the mini-batch statistics of K training
batches *cumulatively* (``momentum=None``: the exact mean of the K estimates) under the current
weights, then set the persistent ``frozen`` flag (:func:`repsr.freeze_bn`). From then on BN is a
fixed affine map in train and eval mode alike, so the network adapts to the statistics it will
see at inference and merges exactly. Under DDP the per-rank estimates are combined across ranks
(the global mean, and the variance of the union via ``E[x^2] - E[x]^2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from repsr.bn import SwitchableBatchNorm2d, batchnorm_layers, freeze_bn


@torch.no_grad()
def _average_across_ranks(layers: Sequence[SwitchableBatchNorm2d]) -> None:
    """Replace each rank's statistics by those of all ranks' batches together (equal batch sizes)."""
    world = dist.get_world_size()
    for bn in layers:
        mean, var = bn.running_mean, bn.running_var
        packed = torch.cat([mean, var + mean * mean])
        dist.all_reduce(packed)
        packed /= world
        global_mean, second_moment = packed.chunk(2)
        bn.running_mean.copy_(global_mean)
        bn.running_var.copy_(second_moment - global_mean * global_mean)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Reset BN statistics and set them to the cumulative average over ``batches``; returns the count.

    ``model`` is the bare network (not a DDP wrapper, whose forward would broadcast rank 0's
    buffers). Only BN buffers change: the forward runs without gradients, and the model's
    train/eval mode is restored afterwards.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was_training = model.training
    momenta = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: running = mean of all batch estimates
        bn.frozen.fill_(False)
    model.train()
    count = 0
    for batch in batches:
        model(batch)
        count += 1
    if count == 0:
        raise ValueError("BN recalibration needs at least one batch")
    for bn, momentum in zip(layers, momenta, strict=True):
        bn.momentum = momentum
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        _average_across_ranks(layers)
    model.train(was_training)
    return count


def freeze_bn_affine(model: nn.Module) -> None:
    """Stop training BN's gamma/beta (the switch's "frozen affine" option)."""
    for bn in batchnorm_layers(model):
        for p in (bn.weight, bn.bias):
            if p is not None:
                p.requires_grad_(False)


def switch_bn(model: nn.Module, batches: Iterable[Tensor] | None, freeze_affine: bool = False) -> int:
    """The switch: re-estimate statistics over ``batches``, freeze them, optionally freeze gamma/beta.

    ``batches=None`` freezes the running (exponential-average) statistics as they are, without
    re-estimation: the cheaper alternative the switch-point ablation compares against.

    Returns the number of BN layers switched (0 for BN-free families, which are left untouched).
    """
    if not batchnorm_layers(model):
        return 0
    if batches is not None:
        recalibrate_bn(model, batches)
    count = freeze_bn(model)
    if freeze_affine:
        freeze_bn_affine(model)
    return count

