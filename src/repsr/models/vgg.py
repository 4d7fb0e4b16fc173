"""The VGG-style SR network of RepSR/ECBSR, at training time and at inference time.

Both compute ``PixelShuffle(tail(act(body(... act(head(x)))))) + nearest_upsample(x)``:

* :class:`RepVGGSR` uses any training-time :class:`~repsr.reparam.RepBlock` family;
* :class:`CompactSR` is its merged form: plain 3x3 convs and PReLUs whose state dict has
  Real-ESRGAN's SRVGGNetCompact layout (``body.{2k}`` convs, ``body.{2k+1}`` PReLUs), so a merged
  file runs unchanged in Real-ESRGAN, chaiNNer and spandrel.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from repsr.blocks import BLOCKS
from repsr.config import ModelConfig
from repsr.models.facts import ModelFacts
from repsr.reparam.base import Fusable


def _check_sizes(config: ModelConfig) -> None:
    if config.scale < 1 or config.blocks < 0 or config.channels < 1 or config.in_channels < 1:
        raise ValueError(f"invalid network size: {config}")


class _ConvChainFacts(ModelFacts):
    """Both forms of the network are ``blocks + 2`` 3x3 convs in a row: one pixel of context each, per side."""

    @classmethod
    def receptive_radius_of(cls, config: ModelConfig) -> int:
        return config.blocks + 2


class RepVGGSR(_ConvChainFacts, Fusable):
    """Training-time network: head block, ``blocks`` body blocks, tail block, each a RepBlock.

    Module names avoid ``body``: tools that sniff SRVGGNetCompact by its keys must never mistake
    an unmerged network for a deploy one. Being :class:`~repsr.reparam.base.Fusable`, it merges
    itself (:meth:`fuse`) into its own deploy layout, :class:`CompactSR`.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        _check_sizes(config)
        make = BLOCKS[config.arch]
        c, s = config.channels, config.scale
        self.config = config
        self.head = make(config.in_channels, c, config)
        self.head_act = nn.PReLU(c)
        self.stages = nn.ModuleList(make(c, c, config) for _ in range(config.blocks))
        self.stage_acts = nn.ModuleList(nn.PReLU(c) for _ in range(config.blocks))
        self.tail = make(c, config.in_channels * s * s, config)
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
        config = ModelConfig(arch="compact", scale=src.scale, blocks=src.blocks, channels=src.channels,
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
