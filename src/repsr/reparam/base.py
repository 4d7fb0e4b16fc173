"""The base class of every training-time block that merges into one convolution."""

from __future__ import annotations

import abc

from torch import nn

from repsr.reparam.kernel import KernelBias, to_conv


class RepBlock(nn.Module, abc.ABC):
    """A multi-branch block whose inference-mode output equals one ``kernel_size`` convolution.

    Subclasses build their branches in ``__init__``, run them in ``forward`` (never merging
    there) and express the merge in :meth:`equivalent_kernel_bias` with the functions of
    :mod:`repsr.reparam.kernel`. :meth:`fuse` is written once, here.
    """

    kernel_size = 3

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels

    @abc.abstractmethod
    def equivalent_kernel_bias(self) -> KernelBias:
        """The single conv equal to this block with BN on population statistics (differentiable)."""

    def output_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The BatchNorms whose output is summed straight into the block's output (none by default)."""
        return []

    def zero_init_output(self) -> None:
        """Make the block output zero at initialisation where BN would otherwise set its scale.

        A BN resets activations to unit variance whatever the fan-in, so a tail block whose output
        is (or directly follows) a BN emits a unit-scale residual that swamps the network's
        nearest-neighbour skip. Zeroing the scale of the output BNs (as ResNets do for their last
        BN) starts such a network from the skip alone; gradients still reach the zeroed scales.
        Blocks without BN keep their fan-in-scaled default init.
        """
        for bn in self.output_norms():
            nn.init.zeros_(bn.weight)

    def fuse(self) -> nn.Conv2d:
        """A new plain ``nn.Conv2d`` equal to this block in inference mode; the block is untouched."""
        return to_conv(self.equivalent_kernel_bias().detach())

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"
