"""RepSR's block (Wang, Dong, Shan 2022): identity + expand-and-squeeze paths with BatchNorm."""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from repsr.bn import SwitchableBatchNorm2d
from repsr.reparam import kernel as K
from repsr.reparam.base import RepBlock


class ExpandSqueeze(nn.Module):
    """3x3 conv expanding to ``mid`` channels, BN, 1x1 conv squeezing back (optionally BN again).

    3x3-then-1x1 merges exactly with ordinary zero padding (see :func:`compose_kxk_1x1`), which is
    why RepSR orders its path this way rather than 1x1-then-3x3.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, bn_after_squeeze: bool) -> None:
        super().__init__()
        self.expand = nn.Conv2d(in_channels, mid_channels, 3, padding=1, bias=False)
        self.expand_bn = SwitchableBatchNorm2d(mid_channels)
        self.squeeze = nn.Conv2d(mid_channels, out_channels, 1, bias=not bn_after_squeeze)
        self.squeeze_bn = SwitchableBatchNorm2d(out_channels) if bn_after_squeeze else None

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.squeeze(self.expand_bn(self.expand(x)))
        return self.squeeze_bn(y) if self.squeeze_bn is not None else y

    def equivalent_kernel_bias(self) -> K.KernelBias:
        expand = K.fuse_bn(K.from_conv(self.expand), self.expand_bn)
        squeeze = K.from_conv(self.squeeze)
        if self.squeeze_bn is not None:
            squeeze = K.fuse_bn(squeeze, self.squeeze_bn)
        return K.compose_kxk_1x1(expand, squeeze)


class RepSRBlock(RepBlock):
    """``x + sum_i squeeze_i(BN(expand_i(x)))``, merging into one 3x3 conv.

    The identity path exists only when ``in_channels == out_channels`` (and ``identity``).
    Each path expands to ``expand_ratio * out_channels`` channels -- the paper's ``C -> rC`` for
    body blocks -- so head and tail blocks are widened in proportion to what they produce.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        paths: int = 2,
        expand_ratio: int = 2,
        identity: bool = True,
        bn_after_squeeze: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels)
        if paths < 1 or expand_ratio < 1:
            raise ValueError("RepSR block needs paths >= 1 and expand_ratio >= 1")
        mid = expand_ratio * out_channels
        self.paths = nn.ModuleList(
            ExpandSqueeze(in_channels, mid, out_channels, bn_after_squeeze) for _ in range(paths)
        )
        self.has_identity = identity and in_channels == out_channels

    def _path_list(self) -> list[ExpandSqueeze]:
        return cast("list[ExpandSqueeze]", list(self.paths))  # nn.ModuleList is untyped; __init__ fills it

    def forward_branches(self, x: Tensor) -> Tensor:
        out: Tensor = sum(path(x) for path in self.paths)
        return out + x if self.has_identity else out

    def output_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [p.squeeze_bn for p in self._path_list() if p.squeeze_bn is not None]

    def zero_init_output(self) -> None:
        """Zero the 1x1 squeeze right after each path's BN (or the BN after it, when there is one)."""
        if self.output_norms():
            super().zero_init_output()
            return
        for path in self._path_list():
            nn.init.zeros_(path.squeeze.weight)
            assert path.squeeze.bias is not None  # without a squeeze BN the 1x1 carries the bias
            nn.init.zeros_(path.squeeze.bias)

    def equivalent_kernel_bias(self) -> K.KernelBias:
        pairs = [path.equivalent_kernel_bias() for path in self._path_list()]
        if self.has_identity:
            pairs.append(K.identity(self.out_channels, 3, like=pairs[0].kernel))
        return K.add(*pairs)
