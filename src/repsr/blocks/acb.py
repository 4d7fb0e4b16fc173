"""ACNet's asymmetric convolution block (Ding et al. 2019): 3x3+BN, 3x1+BN, 1x3+BN."""

from __future__ import annotations

from torch import Tensor, nn

from repsr.blocks.convbn import ConvBN
from repsr.reparam import kernel as K
from repsr.reparam.base import RepBlock


class ACBlock(RepBlock):
    """``BN(3x3 x) + BN(3x1 x) + BN(1x3 x)``; the thin kernels strengthen the centre cross."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.square = ConvBN(in_channels, out_channels, 3)
        self.vertical = ConvBN(in_channels, out_channels, (3, 1))
        self.horizontal = ConvBN(in_channels, out_channels, (1, 3))

    def forward_branches(self, x: Tensor) -> Tensor:
        out: Tensor = self.square(x) + self.vertical(x) + self.horizontal(x)
        return out

    def output_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [self.square.bn, self.vertical.bn, self.horizontal.bn]

    def equivalent_kernel_bias(self) -> K.KernelBias:
        return K.add(*(b.equivalent_kernel_bias() for b in (self.square, self.vertical, self.horizontal)))
