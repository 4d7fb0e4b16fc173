"""The bases of everything that merges: :class:`Fusable` (a whole model or a block) and :class:`RepBlock`.

:func:`repsr.reparam.convert.reparameterize` dispatches on :class:`Fusable` alone, so the merge
needs to know no model: a model with a deploy layout of its own (``RepVGGSR`` -> ``CompactSR``)
says so by being Fusable, and everything else has its RepBlocks swapped one by one.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repsr.bn import batchnorm_layers
from repsr.reparam.kernel import KernelBias, to_conv


class Fusable(nn.Module, abc.ABC):
    """A module that knows its own inference form: a training-time block, or a whole model.

    :meth:`fuse` returns a new module equal to this one in inference mode (BN on population
    statistics) and never mutates ``self``; the result holds no BatchNorm and no Fusable.
    """

    @abc.abstractmethod
    def fuse(self) -> nn.Module:
        """A new module equal to this one in inference mode; ``self`` is untouched."""


class RepBlock(Fusable):
    """A multi-branch block whose inference-mode output equals one convolution.

    Subclasses build their branches in ``__init__``, run them in :meth:`forward_branches` (never
    merging there) and express the merge in :meth:`equivalent_kernel_bias` with the functions of
    :mod:`repsr.reparam.kernel`. :meth:`fuse` and :meth:`forward` are written once, here.

    ``merged_forward`` (off by default, set with :func:`set_merged_forward`) lets training run the
    block as the single conv of its differentiable equivalent kernel whenever the block is linear in
    its input (:meth:`is_linear`). The parameters stay the branches', and the gradients reaching them
    are those of the branch forward (the merge is an exact identity, borders included); only the cost
    changes: one 3x3 conv instead of several, plus a kernel computation independent of the batch.
    """

    merged_forward: bool = False

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels

    @abc.abstractmethod
    def forward_branches(self, x: Tensor) -> Tensor:
        """The training-time graph: every branch run separately and summed."""

    @abc.abstractmethod
    def equivalent_kernel_bias(self) -> KernelBias:
        """The single conv equal to this block with BN on population statistics (differentiable)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.merged_forward and self.is_linear():
            return self.forward_merged(x)
        return self.forward_branches(x)

    def is_linear(self) -> bool:
        """True when the block is a fixed affine map of its input: no BN normalises by batch statistics.

        BN-free blocks always are; a BN block is once every BN is frozen (RepSR's switch) or in eval
        mode. A BN on batch statistics makes the output depend on the rest of the batch, which no
        single conv can express, and must also keep updating its running statistics.
        """
        return all(not bn.training or bool(bn.frozen) for bn in batchnorm_layers(self))

    def forward_merged(self, x: Tensor) -> Tensor:
        """``conv2d(x, W, b)`` with the block's equivalent kernel, differentiable in every parameter.

        The kernel is composed in the parameters' precision even under autocast: products of branch
        kernels rounded to bf16 would change the function, while the conv itself may run in bf16.
        """
        with torch.autocast(x.device.type, enabled=False):
            pair = self.equivalent_kernel_bias()
        kh, kw = pair.kernel.shape[-2:]
        return F.conv2d(x, pair.kernel, pair.bias, padding=(kh // 2, kw // 2))

    def output_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The BatchNorms whose output is summed straight into the block's output (none by default)."""
        return []

    def zero_init_output(self) -> None:
        """Make the block output zero at initialisation where BN would otherwise set its scale.

        A BN resets activations to unit variance whatever the fan-in, so a tail block whose output
        is (or directly follows) a BN emits a unit-scale residual that swamps the network's
        nearest-neighbour skip. Zeroing the scale of the output BNs (as ResNets do for their last
        BN) starts such a network from the skip alone; gradients still reach the zeroed scales.
        BN-free blocks override this to zero their own last layers, so that every family starts
        from the same function (a fair comparison needs one init policy, not one per family).
        """
        for bn in self.output_norms():
            nn.init.zeros_(bn.weight)

    def fuse(self) -> nn.Conv2d:
        """A new plain ``nn.Conv2d`` equal to this block in inference mode; the block is untouched."""
        return to_conv(self.equivalent_kernel_bias().detach())

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


def set_merged_forward(model: nn.Module, enabled: bool) -> int:
    """Turn merged-kernel training on or off for every :class:`RepBlock` of ``model``; returns how many.

    A block still runs its branches while it is not linear (BN on batch statistics), so this may be
    switched on at the start of a run: BN families then change over by themselves at the BN switch.
    """
    blocks = [m for m in model.modules() if isinstance(m, RepBlock)]
    for block in blocks:
        block.merged_forward = enabled
    return len(blocks)


@contextmanager
def branch_forward(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model``'s blocks through their branches inside the ``with`` (e.g. to check the merge)."""
    blocks = [m for m in model.modules() if isinstance(m, RepBlock)]
    before = [b.merged_forward for b in blocks]
    try:
        for block in blocks:
            block.merged_forward = False
        yield model
    finally:
        for block, value in zip(blocks, before, strict=True):
            block.merged_forward = value
