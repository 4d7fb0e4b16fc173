"""The :class:`Upscaler` protocol -- what every engine that produces SR pixels offers -- and its PyTorch form.

Every command that produces SR pixels (eval, upscale, bench, the study) runs an :class:`Upscaler`:
a callable from (N, 3, h, w) float RGB in [0, 1] to (N, 3, s*h, s*w) in [0, 1] that *says* its
scale, receptive radius, tile alignment and channel order. The facts come from the model class
(:class:`repsr.models.ModelFacts`) or, for an ONNX file, from the config stored in it
(:class:`repsr.export.onnx.OnnxUpscaler`), never from a guess, so tiling stays exact for any family.
BGR-trained weights, clamping and no-grad handling live in :func:`super_resolve`.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from repsr.errors import UserError
from repsr.models import model_config

FACTS = ("scale", "receptive_radius", "tile_alignment", "bgr")


@runtime_checkable
class Upscaler(Protocol):
    """SR of float RGB tensors, with the facts tiling needs."""

    scale: int
    receptive_radius: int  # LR pixels of context per side one output pixel depends on
    tile_alignment: int  # tiles start on multiples of this (strided first convs)
    bgr: bool  # the weights expect BGR (the engine flips in and out)

    def __call__(self, lr: Tensor) -> Tensor: ...


@torch.no_grad()
def super_resolve(model: nn.Module, lr: Tensor) -> Tensor:
    """Upscale ``lr`` (N, 3, H, W) float RGB in [0, 1] -> (N, 3, sH, sW) clamped to [0, 1].

    Runs in the model's own dtype/device; flips to BGR and back for weights trained on BGR.
    """
    param = next(model.parameters())
    x = lr.to(device=param.device, dtype=param.dtype)
    bgr = model_config(model).bgr
    if bgr:
        x = x.flip(1)
    y: Tensor = model(x)
    if bgr:
        y = y.flip(1)
    return y.clamp_(0.0, 1.0).to(lr.dtype)


def resolve_device(name: str | None) -> torch.device:
    """``auto``/None -> CUDA when available else CPU; ``cuda`` without a GPU is a user error."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}' (use cpu or cuda)") from None


def _declared(model: object, name: str) -> Any:
    """The fact ``name`` as ``model`` declares it (a class attribute, a property or a plain attribute)."""
    try:
        return getattr(model, name)
    except (AttributeError, TypeError) as exc:  # TypeError: a family that does not declare its radius
        raise UserError(f"{type(model).__name__} does not declare '{name}' ({exc})") from None


class TorchUpscaler:
    """A PyTorch model as an :class:`Upscaler`, optionally bound to a device and precision.

    ``device=None`` runs the model where and as it is (no copy, no mode change: scoring a model
    during training). fp16 (``half=True``, CUDA only) can overflow to inf/NaN on some weights --
    Real-ESRGAN users see black frames. Every fp16 output is checked; a non-finite result is
    recomputed with an fp32 copy of the model and reported once on stderr.
    """

    def __init__(self, model: nn.Module, device: torch.device | str | None = None, half: bool = False,
                 channels_last: bool = False) -> None:
        self.scale = int(_declared(model, "scale"))
        self.receptive_radius = int(_declared(model, "receptive_radius"))
        self.tile_alignment = int(_declared(model, "tile_alignment"))
        self.bgr = bool(_declared(model, "bgr"))
        self.config = model_config(model)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        if half and self.device.type != "cuda":
            raise UserError("--half needs --device cuda (fp16 convolutions are slow or missing on CPU)")
        self.model = model if device is None else model.eval().to(self.device)
        self._fp32: nn.Module | None = None
        if half:
            self._fp32 = copy.deepcopy(self.model).float()
            self.model = self.model.half()
        if channels_last:
            self.model = self.model.to(  # type: ignore[call-overload]  # Module.to's stub lacks memory_format
                memory_format=torch.channels_last)
        self.half = half
        self._warned = False

    @property
    def engine(self) -> str:
        """What runs, in words (``repsr upscale`` prints it)."""
        return f"torch {self.device.type}{' fp16' if self.half else ''}"

    def __call__(self, lr: Tensor) -> Tensor:
        out = super_resolve(self.model, lr)
        if self._fp32 is not None and not torch.isfinite(out).all():
            if not self._warned:
                print("warning: fp16 produced inf/NaN; recomputing those inputs in fp32", file=sys.stderr)
                self._warned = True
            out = super_resolve(self._fp32, lr)
        return out.cpu()


def as_upscaler(model: nn.Module | Upscaler) -> Upscaler:
    """A module as a :class:`TorchUpscaler` run as it is; an :class:`Upscaler` unchanged.

    A callable that is not a module must declare the facts itself: a missing one is an error, not a default.
    """
    if isinstance(model, nn.Module):
        return TorchUpscaler(model)
    for name in FACTS:
        _declared(model, name)
    return model
