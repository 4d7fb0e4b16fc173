"""Training-time block families, one per module; each merges into a 3x3 conv.

Which block a family name stands for, and the config options it reads, is the family's entry in
:data:`repsr.models.registry.FAMILIES`.
"""

from repsr.blocks.acb import ACBlock
from repsr.blocks.dbb import DBBlock
from repsr.blocks.ecb import ECBlock
from repsr.blocks.plain import PlainBlock, PlainBNBlock
from repsr.blocks.repsr import RepSRBlock
from repsr.blocks.repvgg import RepVGGBlock

__all__ = ["ACBlock", "DBBlock", "ECBlock", "PlainBlock", "PlainBNBlock", "RepSRBlock", "RepVGGBlock"]
