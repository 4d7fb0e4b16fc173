"""Diverse Branch Block (Ding et al. 2021): four branches of different receptive fields."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repsr.blocks.convbn import ConvBN
from repsr.bn import SwitchableBatchNorm2d
from repsr.reparam import kernel as K
from repsr.reparam.base import RepBlock


class _IdentityConvBN(nn.Module):
    """``BN(conv1x1(x))`` whose kernel is the identity plus a learned, zero-initialised delta.

    DBB's published 1x1 -> 3x3 branch starts its 1x1 as the identity (``IdentityBasedConv1x1``): the
    branch then begins as a plain 3x3 conv + BN on the block's input instead of a random mixing.
    """

    eye: Tensor  # the identity kernel, a non-persistent buffer

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(channels, channels, 1, 1))
        self.register_buffer("eye", torch.eye(channels).reshape(channels, channels, 1, 1), persistent=False)
        self.bn = SwitchableBatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.bn(F.conv2d(x, self.delta + self.eye))
        return out

    def equivalent_kernel_bias(self) -> K.KernelBias:
        kernel = self.delta + self.eye
        return K.fuse_bn(K.KernelBias(kernel, kernel.new_zeros(kernel.shape[0])), self.bn)


class _OneByOneThen(nn.Module):
    """1x1 conv + BN, then a 3x3 operator (avg-pool or conv) + BN, with exact borders.

    The 1x1 stage's output is padded with its own effective bias (not zero) before the 3x3
    operator, which is what makes the merged single 3x3 conv equal at the image borders too.
    Deviation from the DBB release, on purpose: the padding value is not detached. The gradient is
    then the true gradient of the block's function (a few border taps differ from the release's), and
    merged-kernel training reproduces it exactly. Measured (experiments/dbb_pad_detach.py, M4C16 x4,
    16 T91 patches, batch statistics): the whole-network gradient differs from the release's by 0.7 %
    (fresh net) and 0.16 % (after the fair study's 10,000 iterations). The visible difference is the
    1x1 stage's BN bias: attached, a shift of it moves the padded ring with the interior, the next BN
    removes it and its gradient is ~0 (a true symmetry); detached, it gets a border-only gradient.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, pool: bool) -> None:
        super().__init__()
        identity_first = not pool and mid_channels == in_channels
        self.first = _IdentityConvBN(in_channels) if identity_first else ConvBN(in_channels, mid_channels, 1)
        self.pad = K.BiasPad(1)
        self.op = nn.AvgPool2d(3, stride=1) if pool else nn.Conv2d(mid_channels, out_channels, 3, bias=False)
        self.bn = SwitchableBatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        first = self.first(x)
        out: Tensor = self.bn(self.op(self.pad(first, self.first.equivalent_kernel_bias().bias)))
        return out

    def equivalent_kernel_bias(self) -> K.KernelBias:
        first = self.first.equivalent_kernel_bias()
        if isinstance(self.op, nn.Conv2d):
            second = K.from_conv(self.op)
        else:
            second = K.avg_pool(self.bn.num_features, 3, like=first.kernel)
        return K.fuse_bn(K.compose_1x1_kxk(first, second), self.bn)


class DBBlock(RepBlock):
    """``BN(3x3) + BN(1x1) + BN(avg(BN(1x1))) + BN(3x3(BN(1x1)))`` as in the DBB paper."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.square = ConvBN(in_channels, out_channels, 3)
        self.pointwise = ConvBN(in_channels, out_channels, 1)
        self.avg = _OneByOneThen(in_channels, out_channels, out_channels, pool=True)
        self.pointwise_square = _OneByOneThen(in_channels, in_channels, out_channels, pool=False)

    def _branches(self) -> tuple[ConvBN | _OneByOneThen, ...]:
        return (self.square, self.pointwise, self.avg, self.pointwise_square)

    def forward_branches(self, x: Tensor) -> Tensor:
        out: Tensor = sum(branch(x) for branch in self._branches())
        return out

    def output_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [self.square.bn, self.pointwise.bn, self.avg.bn, self.pointwise_square.bn]

    def equivalent_kernel_bias(self) -> K.KernelBias:
        return K.add(*(branch.equivalent_kernel_bias() for branch in self._branches()))
