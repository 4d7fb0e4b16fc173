"""Whole-model re-parameterization: training graph in, plain deploy network out."""

from __future__ import annotations

import copy

from torch import nn

from repsr.reparam.base import Fusable


def _swap_fusables(module: nn.Module) -> None:
    """Replace, in place, every outermost Fusable below ``module`` with its fused form."""
    for name, child in module.named_children():
        if isinstance(child, Fusable):
            setattr(module, name, child.fuse())
        else:
            _swap_fusables(child)


def assert_deployable(model: nn.Module) -> None:
    """Raise if any BatchNorm or training-time (Fusable) module is left in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, (Fusable, nn.modules.batchnorm._BatchNorm)):
            raise AssertionError(f"{name or 'model'} ({type(module).__name__}) survived re-parameterization")


def reparameterize(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The inference form of ``model``: every RepBlock merged into one plain 3x3 conv.

    A :class:`Fusable` model merges itself into its own deploy form (a VGG-style SR net becomes a
    ``CompactSR``, SRVGGNetCompact layout; a lone RepBlock a conv), always as a new module. Any
    other model gets every Fusable inside it swapped for its fused form, in a copy (or in place
    with ``inplace=True``). BN is folded with its population statistics, so the result equals the
    source in eval mode (or after the BN switch). The input model is never modified unless
    ``inplace``; the result has no BN and no Fusable.
    """
    if isinstance(model, Fusable):
        merged = model.fuse()
    else:
        merged = model if inplace else copy.deepcopy(model)
        _swap_fusables(merged)
    assert_deployable(merged)
    return merged
