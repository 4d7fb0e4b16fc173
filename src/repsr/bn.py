"""BatchNorm that can be switched to population statistics for good (RepSR's "frozen BN").

RepSR trains with mini-batch statistics, then switches BN to population statistics for the late
part of training so the network adapts to what it will see at inference (SPEC §1). The switch is
state of the module, stored as a persistent buffer, so it survives ``model.train()`` (the classic
pitfall: ``train()`` silently re-enables batch statistics on a stock BN), checkpoints, resume and
DDP buffer broadcasts. Re-estimating the statistics at the switch lives in
:mod:`repsr.train.bn_switch`; this module only holds the switchable layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SwitchableBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with a persistent ``frozen`` flag: once set, always population statistics.

    While frozen, the layer is the fixed affine map ``gamma (x - mu) / sqrt(var + eps) + beta``
    in train and eval mode alike, its running statistics never change, and gradients still reach
    ``gamma``/``beta`` (unless the caller sets ``requires_grad=False``).
    """

    frozen: Tensor  # a bool scalar buffer (registered in __init__)
    # Built with track_running_stats=True and affine=True, so none of these is ever None
    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor
    weight: nn.Parameter
    bias: nn.Parameter

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    def forward(self, x: Tensor) -> Tensor:
        if bool(self.frozen):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def batchnorm_layers(model: nn.Module) -> list[SwitchableBatchNorm2d]:
    """All switchable BN layers of ``model``; a stock BatchNorm is an error (it cannot be frozen)."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, SwitchableBatchNorm2d):
            layers.append(module)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise TypeError(f"{name} is a {type(module).__name__}; repsr blocks use SwitchableBatchNorm2d")
    return layers


def freeze_bn(model: nn.Module) -> int:
    """Switch every BN of ``model`` to its population statistics, permanently; returns how many."""
    layers = batchnorm_layers(model)
    for bn in layers:
        bn.frozen.fill_(True)
    return len(layers)


def is_bn_frozen(model: nn.Module) -> bool:
    """True when the model has BN layers and all of them are frozen."""
    layers = batchnorm_layers(model)
    return bool(layers) and all(bool(bn.frozen) for bn in layers)
