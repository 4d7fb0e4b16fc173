"""Conv (no bias) followed by a switchable BN: the branch RepVGG, ACB, DBB and plain+BN share."""

from __future__ import annotations

from torch import Tensor, nn

from repsr.bn import SwitchableBatchNorm2d
from repsr.reparam import kernel as K


class ConvBN(nn.Module):
    """``BN(conv(x))`` with a ``kh x kw`` kernel and "same" padding; merges to one conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int]) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.conv = nn.Conv2d(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2), bias=False)
        self.bn = SwitchableBatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.bn(self.conv(x))
        return out

    def equivalent_kernel_bias(self) -> K.KernelBias:
        return K.fuse_bn(K.from_conv(self.conv), self.bn)
