"""Bicubic++ (Bilecen & Ayazoglu, CVPRW 2023), the NTIRE 2023 real-time x3 SR winner.

``x0 = lrelu(conv0_s2(x)); y = lrelu(conv2(lrelu(conv1(x0)))) + x0; out = PixelShuffle(2s)(conv_out(y))``

The stride-2 first conv halves the resolution, so the pixel shuffle upsamples by ``2 * scale``
(6 at x3, 4 at x2, 8 at x4) and the output is ``scale`` times the input. Most of the compute sits
in ``conv_out`` (``3 * (2s)^2`` output channels at half resolution). No global skip, no clamp.
Parameter names match the official release (``conv0``, ``conv1``, ``conv2``, ``conv_out``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from repsr.config import ModelConfig


class BicubicPP(nn.Module):
    """Bicubic++ at any scale and width; ``config.bias`` toggles the biases (stage 3 removes them)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.scale < 1 or config.channels < 1:
            raise ValueError(f"invalid Bicubic++ size: {config}")
        c, s, bias = config.channels, config.scale, config.bias
        self.config = config
        self.conv0 = nn.Conv2d(config.in_channels, c, 3, stride=2, padding=1, bias=bias)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=bias)
        self.conv_out = nn.Conv2d(c, config.in_channels * (2 * s) ** 2, 3, padding=1, bias=bias)
        self.act = nn.LeakyReLU(0.1)
        self.shuffle = nn.PixelShuffle(2 * s)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        # An odd side would come out `scale` pixels too large after stride 2 and x2s: replicate one
        # row/column (as if the image continued) and crop back to exactly scale * input.
        pad_h, pad_w = h % 2, w % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x0 = self.act(self.conv0(x))
        y = self.act(self.conv2(self.act(self.conv1(x0)))) + x0
        out = self.shuffle(self.conv_out(y))
        s = self.config.scale
        return out[..., : h * s, : w * s]
