"""The VGG-style SR network of RepSR/ECBSR, at training time and at inference time.

Both compute ``PixelShuffle(tail(act(body(... act(head(x)))))) + nearest_upsample(x)``:

* :class:`RepVGGSR` uses any training-time :class:`~repsr.reparam.RepBlock` family;
* :class:`CompactSR` is its merged form: plain 3x3 convs and PReLUs whose state dict has
  Real-ESRGAN's SRVGGNetCompact layout (``body.{2k}`` convs, ``body.{2k+1}`` PReLUs), so a merged
  file runs unchanged in Real-ESRGAN, chaiNNer and spandrel.

The same layout is how peers' files store it: Real-ESRGAN's Compact keys load as they are
(:func:`compact_config` reads the size from the shapes), and ETDS's merged plain ECBSR releases
(``backbone.{i}.{0,1}``) are the same network renamed (:func:`backbone_to_compact`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from repsr.config import ModelConfig
from repsr.errors import WeightsError
from repsr.models.facts import ModelFacts
from repsr.reparam.base import Fusable, RepBlock

# One training-time block from (in_channels, out_channels, config); each family's entry in the registry says which.
BlockFactory = Callable[[int, int, ModelConfig], RepBlock]


def _check_sizes(config: ModelConfig) -> None:
    if config.scale < 1 or config.blocks < 0 or config.channels < 1 or config.in_channels < 1:
        raise ValueError(f"invalid network size: {config}")


class _ConvChainFacts(ModelFacts):
    """Both forms of the network are ``blocks + 2`` 3x3 convs in a row: one pixel of context each, per side."""

    @classmethod
    def receptive_radius_of(cls, config: ModelConfig) -> int:
        return config.blocks + 2


class RepVGGSR(_ConvChainFacts, Fusable):
    """Training-time network: head block, ``blocks`` body blocks, tail block, each made by ``block``.

    Every block family (RepSR, ECB, RepVGG, ...) is this network with its own block; the family
    registry (:mod:`repsr.models.registry`) passes the block that ``config.arch`` names. Module names
    avoid ``body``: tools that sniff SRVGGNetCompact by its keys must never mistake an unmerged
    network for a deploy one. Being :class:`~repsr.reparam.base.Fusable`, it merges itself
    (:meth:`fuse`) into its own deploy layout, :class:`CompactSR`.
    """

    def __init__(self, config: ModelConfig, block: BlockFactory) -> None:
        super().__init__()
        _check_sizes(config)
        c, s = config.channels, config.scale
        self.config = config
        self.head = block(config.in_channels, c, config)
        self.head_act = nn.PReLU(c)
        self.stages = nn.ModuleList(block(c, c, config) for _ in range(config.blocks))
        self.stage_acts = nn.ModuleList(nn.PReLU(c) for _ in range(config.blocks))
        self.tail = block(c, config.in_channels * s * s, config)
        self.shuffle = nn.PixelShuffle(s)
        # Every family starts at nearest-neighbour upsampling. Without this, a tail ending in (or right
        # after) a BN emits a unit-variance residual (measured: such families then trained to below
        # bicubic in 1,000 iterations), and BN-free tails a random one (RMS ~0.1 for ECB).
        if config.zero_init_tail:
            self.tail.zero_init_output()

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.head_act(self.head(x))
        for block, act in zip(self.stages, self.stage_acts, strict=True):
            y = act(block(y))
        out: Tensor = self.shuffle(self.tail(y)) + F.interpolate(x, scale_factor=self.config.scale, mode="nearest")
        return out

    def fuse(self) -> CompactSR:
        """A new :class:`CompactSR` equal to this net in inference mode; this net is untouched.

        Conv ``2k`` of the Compact body is block ``k`` fused (head, stages, tail in order), and
        PReLU ``2k+1`` a copy of the activation after it. Device, dtype and train/eval mode follow
        this net. Only the size fields carry over: the block options name no part of a plain net.
        """
        src = self.config
        config = ModelConfig(arch=CompactSR.arch, scale=src.scale, blocks=src.blocks, channels=src.channels,
                             in_channels=src.in_channels, bgr=src.bgr)
        param = next(self.parameters())
        deploy = CompactSR(config).to(device=param.device, dtype=param.dtype)
        blocks = [self.head, *self.stages, self.tail]
        acts = [self.head_act, *self.stage_acts]
        # load_state_dict copies under no_grad, casting to the deploy net's dtype, and checks names and shapes
        for i, block in enumerate(blocks):
            deploy.body[2 * i].load_state_dict(block.fuse().state_dict())
        for i, act in enumerate(acts):
            deploy.body[2 * i + 1].load_state_dict(act.state_dict())
        return deploy.train(self.training)


class CompactSR(_ConvChainFacts, nn.Module):
    """Inference-time plain network with SRVGGNetCompact's exact module layout (PReLU variant).

    ``body = [conv(in, C), PReLU, (conv(C, C), PReLU) x blocks, conv(C, in * s^2)]``.
    """

    arch: ClassVar[str] = "compact"  # the family name its files carry

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        _check_sizes(config)
        c, s = config.channels, config.scale
        self.config = config
        layers: list[nn.Module] = [nn.Conv2d(config.in_channels, c, 3, padding=1), nn.PReLU(c)]
        for _ in range(config.blocks):
            layers += [nn.Conv2d(c, c, 3, padding=1), nn.PReLU(c)]
        layers.append(nn.Conv2d(c, config.in_channels * s * s, 3, padding=1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(s)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for layer in self.body:
            y = layer(y)
        out: Tensor = self.upsampler(y) + F.interpolate(x, scale_factor=self.config.scale, mode="nearest")
        return out


def compact_config(state: dict[str, Tensor]) -> ModelConfig:
    """Rebuild an SRVGGNetCompact's config from its keys and shapes (as spandrel does)."""
    indices = sorted(int(k.split(".")[1]) for k in state if k.startswith("body.") and k.endswith(".weight"))
    if not indices or state.get("body.1.weight") is None or state["body.1.weight"].dim() != 1:
        raise WeightsError("not an SRVGGNetCompact (PReLU) state dict")
    first, last = state["body.0.weight"], state[f"body.{indices[-1]}.bias"]
    in_ch, channels = first.shape[1], first.shape[0]
    scale = round((last.numel() / in_ch) ** 0.5)
    return ModelConfig(arch=CompactSR.arch, scale=scale, blocks=(indices[-1] - 2) // 2, channels=channels,
                       in_channels=in_ch)


def is_compact_layout(state: dict[str, Tensor]) -> bool:
    """Real-ESRGAN's SRVGGNetCompact keys (``body.{i}``), which :class:`CompactSR` shares."""
    return "body.0.weight" in state


_BACKBONE_KEY = re.compile(r"backbone\.(\d+)\.([01])\.(weight|bias)")


def is_backbone_layout(state: dict[str, Tensor]) -> bool:
    """A merged plain ECBSR (ETDS's release): ``backbone.{i}.0`` convs, ``backbone.{i}.1`` PReLUs, last conv alone."""
    matches = [_BACKBONE_KEY.fullmatch(k) for k in state]
    if not matches or None in matches:
        return False
    last = max(int(m.group(1)) for m in matches if m is not None)
    prelus = [f"backbone.{i}.1.weight" for i in range(last)]
    return all(k in state and state[k].dim() == 1 for k in prelus) and f"backbone.{last}.1.weight" not in state


def backbone_to_compact(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename ``backbone.{i}.0`` -> ``body.{2i}`` and ``backbone.{i}.1`` -> ``body.{2i+1}`` (SRVGGNetCompact).

    The networks are the same function: conv3x3 + PReLU stack, last conv, pixel shuffle, and an
    input repeated per output sub-pixel before the shuffle, which is nearest-neighbour upsampling.
    """
    renamed = {}
    for key, value in state.items():
        match = _BACKBONE_KEY.fullmatch(key)
        if match is None:
            raise WeightsError(f"'{key}' is not a backbone.{{i}}.{{0,1}} key")
        index, part, kind = match.groups()
        renamed[f"body.{2 * int(index) + int(part)}.{kind}"] = value
    return renamed
