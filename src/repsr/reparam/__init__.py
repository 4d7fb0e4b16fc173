"""Re-parameterization: the (kernel, bias) algebra, the block base class and whole-model merging."""

from repsr.reparam.base import Fusable, RepBlock
from repsr.reparam.kernel import KernelBias

__all__ = ["Fusable", "KernelBias", "RepBlock"]
