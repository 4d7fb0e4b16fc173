"""Model families, the table that names them, and size presets.

``create_model("repsr", scale=4, blocks=4, channels=16)`` builds a training-time network;
``build_model(config)`` rebuilds any model from the :class:`ModelConfig` stored in its weights.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from torch import nn

from repsr.blocks import BLOCK_OPTIONS, BLOCKS
from repsr.config import ModelConfig
from repsr.models.bicubic_pp import BicubicPP
from repsr.models.facts import ModelFacts, model_config
from repsr.models.vgg import CompactSR, RepVGGSR

# Every architecture by name. The training-time families merge into "compact".
ARCHS: dict[str, type[nn.Module]] = {
    **{name: RepVGGSR for name in BLOCKS},
    "compact": CompactSR,
    "bicubic_pp": BicubicPP,
}

# Options each arch reads beyond the common size fields; others must stay at their defaults.
ARCH_OPTIONS: dict[str, tuple[str, ...]] = {**BLOCK_OPTIONS, "bicubic_pp": ("bias", "mid_channels")}
_COMMON = ("arch", "scale", "blocks", "channels", "in_channels", "bgr", "zero_init_tail")

# The field's named sizes "MxCy": M body blocks of C channels.
PRESETS: dict[str, tuple[int, int]] = {"M4C8": (4, 8), "M4C16": (4, 16), "M10C32": (10, 32), "M16C64": (16, 64)}


def parse_preset(name: str) -> tuple[int, int]:
    """``"M4C16"`` (or any ``MxCy``) -> ``(blocks, channels)``."""
    match = re.fullmatch(r"[Mm](\d+)[Cc](\d+)", name.strip())
    if not match:
        raise ValueError(f"'{name}' is not a size like M4C16")
    return int(match.group(1)), int(match.group(2))


def build_model(config: ModelConfig) -> nn.Module:
    """The model a :class:`ModelConfig` describes, freshly initialised."""
    if config.arch not in ARCHS:
        raise ValueError(f"unknown arch '{config.arch}' (choose from {', '.join(sorted(ARCHS))})")
    defaults = ModelConfig()
    used = set(_COMMON) | set(ARCH_OPTIONS.get(config.arch, ()))
    for f in dataclasses.fields(ModelConfig):
        if f.name not in used and getattr(config, f.name) != getattr(defaults, f.name):
            raise ValueError(f"option '{f.name}' does not apply to arch '{config.arch}'")
    return ARCHS[config.arch](config)


def declared_facts(config: ModelConfig) -> tuple[int, int]:
    """``(receptive radius, tile alignment)`` that the family of ``config`` declares (no model built)."""
    family = ARCHS[config.arch]
    if not issubclass(family, ModelFacts):
        raise TypeError(f"{config.arch} does not declare its receptive radius and tile alignment")
    return family.receptive_radius_of(config), family.tile_alignment


def create_model(arch: str, *, scale: int, blocks: int = 4, channels: int | None = None, **options: Any) -> nn.Module:
    """Build a network by family name, e.g. ``create_model("repsr", scale=4, blocks=4, channels=16)``.

    ``options`` are the per-family fields of :class:`ModelConfig` (``paths``, ``expand_ratio``,
    ``identity``, ``bn_after_squeeze`` for RepSR; ``ecb_expand`` for ECB; ``bias`` for Bicubic++).
    ``channels`` defaults to 16 (the VGG-style nets' M4C16) or 32 (Bicubic++'s released width).
    """
    if channels is None:
        channels = 32 if arch == "bicubic_pp" else 16
    known = {f.name for f in dataclasses.fields(ModelConfig)} - {"arch", "scale", "blocks", "channels"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown model option '{unknown[0]}'")
    return build_model(ModelConfig(arch=arch, scale=scale, blocks=blocks, channels=channels, **options))


__all__ = ["ARCHS", "PRESETS", "BicubicPP", "CompactSR", "ModelFacts", "RepVGGSR", "build_model", "create_model",
           "declared_facts", "model_config", "parse_preset"]
