"""Synchronised switchable BatchNorm for DDP (batch statistics over the global batch).

Why not ``nn.SyncBatchNorm.convert_sync_batchnorm``: it rebuilds every BN as a stock
``SyncBatchNorm`` and drops the persistent ``frozen`` buffer of
:class:`~repsr.bn.SwitchableBatchNorm2d`, so the BN switch would silently undo itself; stock
SyncBatchNorm also refuses CPU tensors (no gloo). This variant subclasses the switchable layer
(same state-dict keys, merges the same way) and all-reduces the per-channel first and second
moments with a differentiable all-reduce.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from repsr.bn import SwitchableBatchNorm2d


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum over ranks is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx: FunctionCtx, tensor: Tensor) -> Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class SyncSwitchableBatchNorm2d(SwitchableBatchNorm2d):
    """Switchable BN whose mini-batch statistics are taken over all ranks (equal local batch sizes)."""

    def forward(self, x: Tensor) -> Tensor:
        synced = self.training and not bool(self.frozen) and dist.is_available() and dist.is_initialized()
        if not synced or dist.get_world_size() == 1:
            return super().forward(x)
        world = dist.get_world_size()
        dims = (0, 2, 3)
        moments = torch.cat([x.mean(dims), (x * x).mean(dims)]).float()
        summed = _AllReduceSum.apply(moments)  # type: ignore[no-untyped-call]  # torch: Function.apply is unannotated
        moments = summed / world
        mean, second = moments.chunk(2)
        var = (second - mean * mean).clamp_min(0)
        self._update_running_stats(mean.detach(), var.detach(), x.numel() // x.shape[1] * world)
        shape = (1, -1, 1, 1)
        y: Tensor = (x - mean.view(shape).to(x.dtype)) * torch.rsqrt(var.view(shape) + self.eps).to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: int) -> None:
        """BN's own update rule: momentum EMA, or the cumulative average when ``momentum is None``."""
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * count / max(count - 1, 1)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)


def convert_sync_switchable_bn(model: nn.Module) -> nn.Module:
    """Swap every :class:`SwitchableBatchNorm2d` of ``model`` for the synced variant, in place.

    State (running statistics, ``frozen``, gamma/beta, ``requires_grad``) is carried over exactly.
    """
    for name, child in model.named_children():
        if isinstance(child, SwitchableBatchNorm2d) and not isinstance(child, SyncSwitchableBatchNorm2d):
            synced = SyncSwitchableBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum)
            synced = synced.to(device=child.running_mean.device, dtype=child.running_mean.dtype)
            synced.load_state_dict(child.state_dict())
            synced.train(child.training)
            for p_new, p_old in zip(synced.parameters(), child.parameters(), strict=True):
                p_new.requires_grad_(p_old.requires_grad)
            setattr(model, name, synced)
        else:
            convert_sync_switchable_bn(child)
    return model


__all__ = ["SyncSwitchableBatchNorm2d", "convert_sync_switchable_bn"]
