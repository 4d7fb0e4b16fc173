"""Baselines: a plain 3x3 conv, and a 3x3 conv followed by BatchNorm."""

from __future__ import annotations

from torch import Tensor, nn

from repsr.blocks.convbn import ConvBN
from repsr.reparam import kernel as K
from repsr.reparam.base import RepBlock


class PlainBlock(RepBlock):
    """One 3x3 convolution with bias: the network it trains is already its own deploy form."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward_branches(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x)
        return out

    def zero_init_output(self) -> None:
        """Zero weight and bias: the network starts as its nearest-neighbour skip, like the BN families."""
        nn.init.zeros_(self.conv.weight)
        assert self.conv.bias is not None  # built with bias=True
        nn.init.zeros_(self.conv.bias)

    def equivalent_kernel_bias(self) -> K.KernelBias:
        return K.from_conv(self.conv)


class PlainBNBlock(RepBlock):
    """3x3 conv (no bias) + BN: the classic setting in which SR shows BN artifacts."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.branch = ConvBN(in_channels, out_channels, 3)

    def forward_branches(self, x: Tensor) -> Tensor:
        out: Tensor = self.branch(x)
        return out

    def output_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [self.branch.bn]

    def equivalent_kernel_bias(self) -> K.KernelBias:
        return self.branch.equivalent_kernel_bias()
