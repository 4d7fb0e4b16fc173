"""Which channels of Bicubic++ can be pruned together, and the surgery that removes them.

Two kinds of prunable channel (SPEC section 3):

* ``residual``: channel ``k`` of the residual stream. ``x0 = lrelu(conv0(x))`` and
  ``lrelu(conv2(.))`` are added, so output ``k`` of conv0 and of conv2 go together, with input
  ``k`` of conv1 and of conv_out.
* ``mid``: output ``j`` of conv1, with input ``j`` of conv2; independent of the rest.

conv_out's outputs are never pruned: they are the pixel-shuffle groups that form the image.

Surgery uses torch-pruning's dependency graph rooted at conv0 or conv1 (it finds the residual
coupling through the add by itself), then rebuilds a fresh :class:`BicubicPP` from the pruned
shapes, so the result is always a plain dense net whose config describes it. Zeroing a channel's
weights *and* bias is exactly its removal (``lrelu(0) = 0`` contributes nothing downstream),
which lets :func:`channel_masked` price a removal without any surgery.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch_pruning as tp

from repsr.config import replace
from repsr.models.bicubic_pp import BicubicPP


@dataclass(frozen=True)
class ChannelGroup:
    """A family of channels removed one index at a time: the convs whose output ``k`` goes."""

    name: str
    convs: tuple[str, ...]


GROUPS = (ChannelGroup("residual", ("conv0", "conv2")), ChannelGroup("mid", ("conv1",)))


def group_width(model: BicubicPP, group: ChannelGroup) -> int:
    """Current number of channels in ``group``."""
    return int(getattr(model, group.convs[0]).out_channels)


def widths(model: BicubicPP) -> dict[str, int]:
    """``{"residual": channels, "mid": conv1 outputs}`` of a Bicubic++ net."""
    return {g.name: group_width(model, g) for g in GROUPS}


@contextmanager
def channel_masked(model: BicubicPP, group: ChannelGroup, index: int) -> Iterator[None]:
    """Temporarily zero channel ``index`` of ``group`` (weights and bias): the net then computes
    exactly what it computes with that channel removed. Restores the weights on exit."""
    convs = [getattr(model, name) for name in group.convs]
    saved = [(c.weight[index].clone(), None if c.bias is None else c.bias[index].clone()) for c in convs]
    try:
        with torch.no_grad():
            for conv in convs:
                conv.weight[index].zero_()
                if conv.bias is not None:
                    conv.bias[index].zero_()
        yield
    finally:
        with torch.no_grad():
            for conv, (weight, bias) in zip(convs, saved, strict=True):
                conv.weight[index].copy_(weight)
                if bias is not None:
                    conv.bias[index].copy_(bias)


def rebuild(pruned: BicubicPP, config_source: BicubicPP, bias: bool | None = None) -> BicubicPP:
    """A fresh BicubicPP whose config matches ``pruned``'s conv shapes, holding its weights."""
    c, mid = pruned.conv0.out_channels, pruned.conv1.out_channels
    config = replace(config_source.config, channels=c, mid_channels=None if mid == c else mid,
                     bias=config_source.config.bias if bias is None else bias)
    fresh = BicubicPP(config)
    state = {k: v for k, v in pruned.state_dict().items() if bias is not False or not k.endswith(".bias")}
    fresh.load_state_dict(state, strict=True)
    param = next(pruned.parameters())
    return fresh.to(device=param.device, dtype=param.dtype).train(pruned.training)


def remove_channels(model: BicubicPP, group: ChannelGroup, indices: Sequence[int]) -> BicubicPP:
    """A copy of ``model`` without channels ``indices`` of ``group``; ``model`` is untouched.

    torch-pruning's :class:`DependencyGraph` propagates the removal to every coupled layer
    (conv2 through the residual add, the inputs of conv1/conv2/conv_out). It cannot prune through
    PixelShuffle, and need not: conv_out's outputs are never a root here, which is checked.
    """
    indices = sorted({int(i) for i in indices})
    if not indices:
        return copy.deepcopy(model)
    width = group_width(model, group)
    if indices[0] < 0 or indices[-1] >= width or len(indices) >= width:
        raise ValueError(f"cannot remove channels {indices} of {group.name} (width {width})")
    work = copy.deepcopy(model).eval()
    param = next(work.parameters())
    example = torch.zeros(1, work.config.in_channels, 8, 8, device=param.device, dtype=param.dtype)
    graph = tp.DependencyGraph().build_dependency(work, example_inputs=example)
    graph.get_pruning_group(getattr(work, group.convs[0]), tp.prune_conv_out_channels, idxs=indices).prune()
    if work.conv_out.out_channels != model.conv_out.out_channels:
        raise AssertionError("pruning reached conv_out's pixel-shuffle outputs")
    return rebuild(work.train(model.training), model)


def drop_biases(model: BicubicPP) -> BicubicPP:
    """A bias-free copy of ``model`` (stage 3), to be fine-tuned.

    No bias folds exactly here: each conv but the last feeds a LeakyReLU (a bias moves the kink),
    zero padding makes a constant input non-constant at the borders, and conv_out's bias has no
    later layer to go to. So biases are dropped and fine-tuning recovers the loss.
    """
    return rebuild(model, model, bias=False)


__all__ = ["GROUPS", "ChannelGroup", "channel_masked", "drop_biases", "group_width", "rebuild",
           "remove_channels", "widths"]
