"""Model families (one registry entry each: :mod:`repsr.models.registry`) and size presets.

``create_model("repsr", scale=4, blocks=4, channels=16)`` builds a training-time network;
``build_model(config)`` rebuilds any model from the :class:`ModelConfig` stored in its weights.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from torch import nn

from repsr.config import ModelConfig
from repsr.models.bicubic_pp import BicubicPP
from repsr.models.facts import ModelFacts, model_config
from repsr.models.registry import FAMILIES, Family, Layout, build_model, check_config, declared_facts, family
from repsr.models.vgg import CompactSR, RepVGGSR

# The field's named sizes "MxCy": M body blocks of C channels.
PRESETS: dict[str, tuple[int, int]] = {"M4C8": (4, 8), "M4C16": (4, 16), "M10C32": (10, 32), "M16C64": (16, 64)}


def parse_preset(name: str) -> tuple[int, int]:
    """``"M4C16"`` (or any ``MxCy``) -> ``(blocks, channels)``."""
    match = re.fullmatch(r"[Mm](\d+)[Cc](\d+)", name.strip())
    if not match:
        raise ValueError(f"'{name}' is not a size like M4C16")
    return int(match.group(1)), int(match.group(2))


def create_model(arch: str, *, scale: int, blocks: int = 4, channels: int | None = None, **options: Any) -> nn.Module:
    """Build a network by family name, e.g. ``create_model("repsr", scale=4, blocks=4, channels=16)``.

    ``options`` are the per-family fields of :class:`ModelConfig` (``paths``, ``expand_ratio``,
    ``identity``, ``bn_after_squeeze`` for RepSR; ``ecb_expand`` for ECB; ``bias`` for Bicubic++:
    each family's ``options`` in the registry). ``channels`` defaults to the family's own
    (16, the VGG-style nets' M4C16; 32, Bicubic++'s released width).
    """
    if channels is None:
        channels = family(arch).default_channels
    known = {f.name for f in dataclasses.fields(ModelConfig)} - {"arch", "scale", "blocks", "channels"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown model option '{unknown[0]}'")
    return build_model(ModelConfig(arch=arch, scale=scale, blocks=blocks, channels=channels, **options))


__all__ = ["FAMILIES", "PRESETS", "BicubicPP", "CompactSR", "Family", "Layout", "ModelFacts", "RepVGGSR",
           "build_model", "check_config", "create_model", "declared_facts", "family", "model_config", "parse_preset"]
