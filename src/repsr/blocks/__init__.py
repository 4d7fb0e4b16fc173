"""Training-time block families, one per module, and the table that names them.

``BLOCKS[arch](in_channels, out_channels, config)`` builds one block; each merges into a 3x3 conv.
"""

from __future__ import annotations

from collections.abc import Callable

from repsr.blocks.acb import ACBlock
from repsr.blocks.dbb import DBBlock
from repsr.blocks.ecb import ECBlock
from repsr.blocks.plain import PlainBlock, PlainBNBlock
from repsr.blocks.repsr import RepSRBlock
from repsr.blocks.repvgg import RepVGGBlock
from repsr.config import ModelConfig
from repsr.reparam.base import RepBlock

BlockFactory = Callable[[int, int, ModelConfig], RepBlock]

BLOCKS: dict[str, BlockFactory] = {
    "repsr": lambda i, o, c: RepSRBlock(
        i, o, paths=c.paths, expand_ratio=c.expand_ratio, identity=c.identity, bn_after_squeeze=c.bn_after_squeeze
    ),
    "ecbsr": lambda i, o, c: ECBlock(i, o, expand=c.ecb_expand),
    "repvgg": lambda i, o, c: RepVGGBlock(i, o),
    "acb": lambda i, o, c: ACBlock(i, o),
    "dbb": lambda i, o, c: DBBlock(i, o),
    "plain": lambda i, o, c: PlainBlock(i, o),
    "plain_bn": lambda i, o, c: PlainBNBlock(i, o),
}

# The ModelConfig fields each family reads beyond arch/scale/blocks/channels/in_channels.
BLOCK_OPTIONS: dict[str, tuple[str, ...]] = {
    "repsr": ("paths", "expand_ratio", "identity", "bn_after_squeeze"),
    "ecbsr": ("ecb_expand",),
}

__all__ = ["BLOCKS", "BLOCK_OPTIONS", "ACBlock", "DBBlock", "ECBlock", "PlainBlock", "PlainBNBlock",
           "RepSRBlock", "RepVGGBlock"]
