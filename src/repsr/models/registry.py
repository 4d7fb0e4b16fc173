"""The model-family registry: every network repsr builds, under the name its weights files carry.

One :class:`Family` per name holds what the rest of the package asks about a family: how to build it
from a :class:`~repsr.config.ModelConfig`, the config options it reads (the others must stay at their
defaults), the family its merge produces, whether it is trained, its default width, the network class
that declares the facts tiling needs (:class:`~repsr.models.facts.ModelFacts`), and the foreign weights
layouts it reads, told apart by their keys the way spandrel detects architectures.

``create_model``, ``build_model``, weights loading (:mod:`repsr.weights`), the training config's
checks, ``repsr bench`` and ``repsr bench-train`` read :data:`FAMILIES`; no other module knows a family
by its name. Adding a family is one module in ``blocks/`` or ``models/`` and one entry here
(docs/architecture.md, "Add a model family").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from repsr.blocks import ACBlock, DBBlock, ECBlock, PlainBlock, PlainBNBlock, RepSRBlock, RepVGGBlock
from repsr.config import ModelConfig
from repsr.errors import WeightsError
from repsr.models.bicubic_pp import BicubicPP, is_official_layout, official_config
from repsr.models.facts import ModelFacts
from repsr.models.vgg import (
                              BlockFactory,
                              CompactSR,
                              RepVGGSR,
                              backbone_to_compact,
                              compact_config,
                              is_backbone_layout,
                              is_compact_layout,
)

StateDict = dict[str, Tensor]

# The ModelConfig fields every family reads; any other field is an option of the families that name it.
COMMON_FIELDS = ("arch", "scale", "blocks", "channels", "in_channels", "bgr", "zero_init_tail")


def _as_is(state: StateDict) -> StateDict:
    return state


@dataclass(frozen=True)
class Layout:
    """A foreign weights layout of one family: how to tell it by its keys, rename it, and size the network."""

    name: str  # what users call such files, for the error that lists the layouts repsr reads
    matches: Callable[[StateDict], bool]
    config: Callable[[StateDict], ModelConfig]  # from the renamed state; WeightsError when the shapes do not fit
    rename: Callable[[StateDict], StateDict] = _as_is  # into the family's own parameter names


@dataclass(frozen=True)
class Family:
    """One model family: its name (``ModelConfig.arch``) and everything repsr asks about it."""

    name: str
    build: Callable[[ModelConfig], nn.Module]  # a freshly initialised network of a config
    network: type[ModelFacts]  # the class built, which declares its receptive radius and tile alignment
    options: tuple[str, ...] = ()  # the ModelConfig fields it reads beyond COMMON_FIELDS
    block: BlockFactory | None = None  # a VGG-style training family (RepVGGSR): the block it stacks
    deploy: str | None = None  # the family reparameterize() turns it into; None: it runs as built
    trainable: bool = True  # False for an inference form: train the family it is merged from
    default_channels: int = 16  # create_model's width when none is given
    layouts: tuple[Layout, ...] = ()  # foreign weights layouts it reads, tried in order
    bgr_release: str | None = None  # a BGR-trained foreign release, which its file cannot say

    def receptive_radius(self, config: ModelConfig) -> int:
        return self.network.receptive_radius_of(config)

    @property
    def tile_alignment(self) -> int:
        return self.network.tile_alignment


def _vgg(name: str, block: BlockFactory, options: tuple[str, ...] = ()) -> Family:
    """A training-time block family: :class:`RepVGGSR` stacking ``block``, merged into :class:`CompactSR`."""
    return Family(name, lambda config: RepVGGSR(config, block), RepVGGSR, options, block=block,
                  deploy=CompactSR.arch)


FAMILIES: dict[str, Family] = {family.name: family for family in (
    _vgg("repsr", lambda i, o, c: RepSRBlock(i, o, paths=c.paths, expand_ratio=c.expand_ratio, identity=c.identity,
                                             bn_after_squeeze=c.bn_after_squeeze),
         ("paths", "expand_ratio", "identity", "bn_after_squeeze")),
    _vgg("ecbsr", lambda i, o, c: ECBlock(i, o, expand=c.ecb_expand), ("ecb_expand",)),
    _vgg("repvgg", lambda i, o, c: RepVGGBlock(i, o)),
    _vgg("acb", lambda i, o, c: ACBlock(i, o)),
    _vgg("dbb", lambda i, o, c: DBBlock(i, o)),
    _vgg("plain", lambda i, o, c: PlainBlock(i, o)),
    _vgg("plain_bn", lambda i, o, c: PlainBNBlock(i, o)),
    Family(CompactSR.arch, CompactSR, CompactSR, trainable=False, layouts=(
        Layout("Real-ESRGAN's SRVGGNetCompact", is_compact_layout, compact_config),
        Layout("ETDS's plain ECBSR backbone", is_backbone_layout, compact_config, backbone_to_compact))),
    Family(BicubicPP.arch, BicubicPP, BicubicPP, ("bias", "mid_channels"), default_channels=32,
           bgr_release="the official release",
           layouts=(Layout("the official Bicubic++", is_official_layout, official_config),)),
)}


def family(name: str) -> Family:
    """The family called ``name``; a ValueError listing the families for an unknown one."""
    if name not in FAMILIES:
        raise ValueError(f"unknown arch '{name}' (choose from {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]


def check_config(config: ModelConfig) -> Family:
    """The family of ``config``, once every option it sets is one that family reads (a ValueError otherwise).

    A non-default option of another family is refused rather than ignored: ``expand_ratio=4`` on
    RepVGG blocks would otherwise train a network that is not the one asked for.
    """
    found = family(config.arch)
    used = set(COMMON_FIELDS) | set(found.options)
    defaults = ModelConfig()
    for field in dataclasses.fields(ModelConfig):
        if field.name not in used and getattr(config, field.name) != getattr(defaults, field.name):
            raise ValueError(f"option '{field.name}' does not apply to arch '{config.arch}'")
    return found


def build_model(config: ModelConfig) -> nn.Module:
    """The model a :class:`ModelConfig` describes, freshly initialised."""
    return check_config(config).build(config)


def declared_facts(config: ModelConfig) -> tuple[int, int]:
    """``(receptive radius, tile alignment)`` that the family of ``config`` declares (no model built)."""
    found = family(config.arch)
    return found.receptive_radius(config), found.tile_alignment


def recognise(state: StateDict, source: str) -> tuple[ModelConfig, StateDict]:
    """``(config, state in the family's own names)`` of a foreign state dict, by the first layout it matches.

    ``source`` (the file) starts every error: a layout whose shapes do not fit, or no layout at all.
    """
    for found in FAMILIES.values():
        for layout in found.layouts:
            if layout.matches(state):
                renamed = layout.rename(state)
                try:
                    return layout.config(renamed), renamed
                except WeightsError as exc:
                    raise WeightsError(f"{source}: {exc}") from None
    known = ", ".join(layout.name for found in FAMILIES.values() for layout in found.layouts)
    raise WeightsError(f"{source}: unrecognised weights layout (neither repsr's own nor {known})")
