"""Bicubic++ (Bilecen & Ayazoglu, CVPRW 2023), the NTIRE 2023 real-time x3 SR winner.

``x0 = lrelu(conv0_s2(x)); y = lrelu(conv2(lrelu(conv1(x0)))) + x0; out = PixelShuffle(2s)(conv_out(y))``

The stride-2 first conv halves the resolution, so the pixel shuffle upsamples by ``2 * scale``
and ``conv_out`` has ``in_channels * (2s)^2`` outputs: 48 at x2 (shuffle 4), 108 at x3 (shuffle 6,
the released model), 192 at x4 (shuffle 8). The output is ``scale`` times the input. Most of the
compute sits in ``conv_out``. No global skip, no clamp (inference clamps). LeakyReLU slope 0.1.
Parameter names match the official release (``conv0``, ``conv1``, ``conv2``, ``conv_out``), so its
state dict loads unchanged; with ``bias=False`` and 32 channels this is exactly that network.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from repsr.config import ModelConfig
from repsr.errors import WeightsError
from repsr.models.facts import ModelFacts


class BicubicPP(ModelFacts, nn.Module):
    """Bicubic++ at any scale and width; ``config.bias`` toggles the biases (stage 3 removes them).

    ``config.channels`` is the width of the residual stream (conv0 and conv2 outputs, which the
    residual add couples); ``config.mid_channels`` (default: the same) is conv1's output width,
    which structured pruning may shrink independently.
    """

    arch: ClassVar[str] = "bicubic_pp"  # the family name its files carry
    tile_alignment = 2  # the stride-2 first conv

    @classmethod
    def receptive_radius_of(cls, config: ModelConfig) -> int:
        """A stride-2 3x3 conv then three 3x3 convs at half resolution (``1 + 2 * 3``), plus one for
        the odd-size replicate pad: 8, even so that tiles keep the stride-2 grid."""
        return 8

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        mid = config.channels if config.mid_channels is None else config.mid_channels
        if config.scale < 1 or config.channels < 1 or mid < 1:
            raise ValueError(f"invalid Bicubic++ size: {config}")
        c, s, bias = config.channels, config.scale, config.bias
        self.config = config
        self.conv0 = nn.Conv2d(config.in_channels, c, 3, stride=2, padding=1, bias=bias)
        self.conv1 = nn.Conv2d(c, mid, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(mid, c, 3, padding=1, bias=bias)
        self.conv_out = nn.Conv2d(c, config.in_channels * (2 * s) ** 2, 3, padding=1, bias=bias)
        self.act = nn.LeakyReLU(0.1)
        self.shuffle = nn.PixelShuffle(2 * s)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        # An odd side would come out `scale` pixels too large after stride 2 and x2s (the official
        # code returns that larger image): replicate one row/column, as if the image continued,
        # and crop back to exactly scale * input.
        pad_h, pad_w = h % 2, w % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x0 = self.act(self.conv0(x))
        y = self.act(self.conv2(self.act(self.conv1(x0)))) + x0
        out: Tensor = self.shuffle(self.conv_out(y))
        s = self.config.scale
        return out[..., : h * s, : w * s]


def is_official_layout(state: dict[str, Tensor]) -> bool:
    """The official release's keys (``conv0`` ... ``conv_out``), which :class:`BicubicPP` shares."""
    return "conv0.weight" in state and "conv_out.weight" in state


def official_config(state: dict[str, Tensor]) -> ModelConfig:
    """Config of an official-layout Bicubic++ state dict (width, scale, biases) from its shapes."""
    conv0, out = state["conv0.weight"], state["conv_out.weight"]
    in_ch = conv0.shape[1]
    shuffle = round((out.shape[0] / in_ch) ** 0.5)
    if shuffle % 2 or in_ch * shuffle * shuffle != out.shape[0]:
        raise WeightsError("conv_out of this Bicubic++ file has no valid pixel-shuffle factor")
    mid = state["conv1.weight"].shape[0] if "conv1.weight" in state else conv0.shape[0]
    return ModelConfig(arch=BicubicPP.arch, scale=shuffle // 2, channels=conv0.shape[0], in_channels=in_ch,
                       bias="conv0.bias" in state, mid_channels=None if mid == conv0.shape[0] else mid)
