"""Whole-model re-parameterization: training graph in, plain deploy network out."""

from __future__ import annotations

import copy

import torch
from torch import nn

from repsr.config import ModelConfig
from repsr.models.vgg import CompactSR, RepVGGSR
from repsr.reparam.base import RepBlock


def _to_compact(model: RepVGGSR) -> CompactSR:
    """Merge a VGG-style training net into the SRVGGNetCompact-layout deploy net."""
    src = model.config
    config = ModelConfig(arch="compact", scale=src.scale, blocks=src.blocks, channels=src.channels,
                         in_channels=src.in_channels, bgr=src.bgr)
    param = next(model.parameters())
    deploy = CompactSR(config).to(device=param.device, dtype=param.dtype)
    blocks = [model.head, *model.stages, model.tail]
    acts = [model.head_act, *model.stage_acts]
    with torch.no_grad():
        for i, block in enumerate(blocks):
            conv = block.fuse()
            deploy.body[2 * i].weight.copy_(conv.weight)
            deploy.body[2 * i].bias.copy_(conv.bias)
        for i, act in enumerate(acts):
            deploy.body[2 * i + 1].weight.copy_(act.weight)
    return deploy.train(model.training)


def _swap_blocks(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, RepBlock):
            setattr(module, name, child.fuse())
        else:
            _swap_blocks(child)


def assert_deployable(model: nn.Module) -> None:
    """Raise if any BatchNorm or training-time block is left in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, (RepBlock, nn.modules.batchnorm._BatchNorm)):
            raise AssertionError(f"{name or 'model'} ({type(module).__name__}) survived re-parameterization")


def reparameterize(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The inference form of ``model``: every RepBlock merged into one plain 3x3 conv.

    VGG-style SR nets become a :class:`CompactSR` (SRVGGNetCompact layout); other models get their
    RepBlocks swapped in a copy (or in place with ``inplace=True``). BN is folded with its
    population statistics, so the result equals the source in eval mode (or after the BN switch).
    The input model is never modified unless ``inplace``; the result has no BN and no RepBlock.
    """
    if isinstance(model, RepVGGSR):
        merged: nn.Module = _to_compact(model)
    else:
        merged = model if inplace else copy.deepcopy(model)
        if isinstance(merged, RepBlock):
            merged = merged.fuse()
        else:
            _swap_blocks(merged)
    assert_deployable(merged)
    return merged
