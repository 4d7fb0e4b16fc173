"""What a model family declares about itself for running on images: scale, receptive radius, alignment, channel order.

Tiling is exact only when each tile's context covers the receptive radius, and a strided model only
keeps its sampling grid when tiles start on its alignment. These are properties of the network's
shape, so each family states them (:meth:`ModelFacts.receptive_radius_of`) instead of a runner
guessing them from an arch name: a new family that forgets gets a ``TypeError`` at its first
tiled run, never silent seams.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from repsr.config import ModelConfig


class ModelFacts:
    """Mixin for an ``nn.Module`` with a ``config``: the facts :class:`repsr.inference.Upscaler` reads."""

    config: ModelConfig
    # Tiles must start on multiples of this so strided convs see the same sampling grid.
    tile_alignment: ClassVar[int] = 1

    @classmethod
    def receptive_radius_of(cls, config: ModelConfig) -> int:
        """LR pixels of context one output pixel depends on, per side, for a model of ``config``."""
        raise TypeError(f"{cls.__name__} does not declare its receptive radius")

    @property
    def scale(self) -> int:
        return int(self.config.scale)

    @property
    def receptive_radius(self) -> int:
        return self.receptive_radius_of(self.config)

    @property
    def bgr(self) -> bool:
        """The weights expect BGR input (flipped in and out by the runner)."""
        return bool(self.config.bgr)


def model_config(model: nn.Module) -> ModelConfig:
    """The :class:`ModelConfig` a repsr network was built from (every family keeps it as ``config``).

    Read by attribute, not by class, so a wrapper that forwards attributes (``torch.compile``'s
    ``OptimizedModule``) works too; a module without one is a ``TypeError`` naming its class.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"{type(model).__name__} carries no ModelConfig (not a repsr network)")
    return config
