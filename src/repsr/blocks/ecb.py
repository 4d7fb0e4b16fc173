"""ECBSR's edge-oriented convolution block (Zhang, Zeng, Zhang 2021). No BatchNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repsr.reparam import kernel as K
from repsr.reparam.base import RepBlock


class _ExpandThen3x3(nn.Module):
    """1x1 conv to ``mid`` channels, then a 3x3 conv, the intermediate padded with the 1x1's bias."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, mid_channels, 1)
        self.pad = K.BiasPad(1)
        self.square = nn.Conv2d(mid_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.square(self.pad(self.pointwise(x), self.pointwise.bias))
        return out

    def equivalent_kernel_bias(self) -> K.KernelBias:
        return K.compose_1x1_kxk(K.from_conv(self.pointwise), K.from_conv(self.square))


class _EdgeBranch(nn.Module):
    """1x1 conv, then a fixed depthwise edge mask with learnable per-channel scale and bias."""

    def __init__(self, in_channels: int, out_channels: int, mask: tuple[tuple[float, ...], ...]) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.pad = K.BiasPad(1)
        self.mask = mask
        # ECBSR initialises the mask scales and biases around 1e-3 so the edge paths start quiet.
        self.scale = nn.Parameter(torch.randn(out_channels) * 1e-3)
        self.bias = nn.Parameter(torch.randn(out_channels) * 1e-3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.pad(self.pointwise(x), self.pointwise.bias)
        m = torch.tensor(self.mask, dtype=y.dtype, device=y.device)
        weight = self.scale.reshape(-1, 1, 1, 1) * m
        return F.conv2d(y, weight, self.bias, groups=self.scale.numel())

    def equivalent_kernel_bias(self) -> K.KernelBias:
        return K.compose_1x1_kxk(K.from_conv(self.pointwise), K.fixed_mask(self.mask, self.scale, self.bias))


class ECBlock(RepBlock):
    """``3x3 + (1x1 -> 3x3) + (1x1 -> Sobel-x) + (1x1 -> Sobel-y) + (1x1 -> Laplacian)``.

    All branches carry biases; ECBSR's released configs keep the identity path off, and so do we.
    """

    def __init__(self, in_channels: int, out_channels: int, *, expand: int = 2) -> None:
        super().__init__(in_channels, out_channels)
        self.square = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.expand_square = _ExpandThen3x3(in_channels, expand * out_channels, out_channels)
        self.sobel_x = _EdgeBranch(in_channels, out_channels, K.SOBEL_X)
        self.sobel_y = _EdgeBranch(in_channels, out_channels, K.SOBEL_Y)
        self.laplacian = _EdgeBranch(in_channels, out_channels, K.LAPLACIAN)

    def forward_branches(self, x: Tensor) -> Tensor:
        out: Tensor = self.square(x) + self.expand_square(x) + self.sobel_x(x) + self.sobel_y(x) + self.laplacian(x)
        return out

    def zero_init_output(self) -> None:
        """Zero every branch's contribution: the 3x3, the 1x1->3x3's 3x3 and bias, the masks' scale and bias.

        Each branch ends in one of these, so the block starts as the zero map (the network as its
        nearest-neighbour skip, like the BN families) and every zeroed tensor still gets a gradient.
        """
        tensors = [self.square.weight, self.square.bias, self.expand_square.square.weight,
                   self.expand_square.square.bias]
        for branch in (self.sobel_x, self.sobel_y, self.laplacian):
            tensors += [branch.scale, branch.bias]
        with torch.no_grad():
            for t in tensors:
                assert t is not None  # every conv here is built with bias=True
                t.zero_()

    def equivalent_kernel_bias(self) -> K.KernelBias:
        branches = (self.expand_square, self.sobel_x, self.sobel_y, self.laplacian)
        return K.add(K.from_conv(self.square), *(b.equivalent_kernel_bias() for b in branches))
