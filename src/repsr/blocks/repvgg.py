"""RepVGG (Ding et al. 2021): 3x3+BN, 1x1+BN and a BN-only identity branch."""

from __future__ import annotations

from torch import Tensor, nn

from repsr.blocks.convbn import ConvBN
from repsr.bn import SwitchableBatchNorm2d
from repsr.reparam import kernel as K
from repsr.reparam.base import RepBlock


class RepVGGBlock(RepBlock):
    """``BN(3x3 x) + BN(1x1 x) + BN(x)``; the identity branch only when in == out."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.conv3x3 = ConvBN(in_channels, out_channels, 3)
        self.conv1x1 = ConvBN(in_channels, out_channels, 1)
        self.identity_bn = SwitchableBatchNorm2d(out_channels) if in_channels == out_channels else None

    def forward_branches(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv3x3(x) + self.conv1x1(x)
        return out + self.identity_bn(x) if self.identity_bn is not None else out

    def output_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        norms: list[nn.modules.batchnorm._BatchNorm] = [self.conv3x3.bn, self.conv1x1.bn]
        return norms + [self.identity_bn] if self.identity_bn is not None else norms

    def equivalent_kernel_bias(self) -> K.KernelBias:
        pairs = [self.conv3x3.equivalent_kernel_bias(), self.conv1x1.equivalent_kernel_bias()]
        if self.identity_bn is not None:
            ident = K.identity(self.out_channels, 3, like=pairs[0].kernel)
            pairs.append(K.fuse_bn(ident, self.identity_bn))
        return K.add(*pairs)
