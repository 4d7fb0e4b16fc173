"""Running a super-resolution model on image tensors: channel order, precision, tiling, devices.

Every command that produces SR pixels (eval, upscale, study) goes through :func:`super_resolve`,
so BGR-trained weights, clamping and no-grad handling live in one place. :func:`upscale_tiled`
bounds memory on huge images (Real-ESRGAN users' most common complaint) without tile seams: each
tile is run with ``tile_pad`` pixels of real context, and as long as that context covers the
network's receptive-field radius the stitched result equals the untiled one.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable

import torch
from torch import Tensor, nn

from repsr.errors import ReprError

# A callable that maps (N, 3, h, w) float RGB in [0, 1] to (N, 3, s*h, s*w) in [0, 1].
Upscaler = Callable[[Tensor], Tensor]


def model_scale(model: nn.Module) -> int:
    return int(model.config.scale)  # type: ignore[union-attr]


def receptive_radius(model: object) -> int:
    """LR pixels of context one output pixel depends on, per side.

    VGG-style nets (training graph or merged) are ``blocks + 2`` 3x3 convs: radius ``blocks + 2``.
    Bicubic++ has a stride-2 3x3 conv then three 3x3 convs at half resolution: ``1 + 2 * 3``, plus
    one for the odd-size replicate pad, rounded to even. Unknown models get a generous 16.
    """
    config = getattr(model, "config", None)
    if config is None:
        return 16
    if config.arch == "bicubic_pp":
        return 8
    return int(config.blocks) + 2


def tile_alignment(model: object) -> int:
    """Tiles must start on multiples of this so strided convs see the same sampling grid."""
    config = getattr(model, "config", None)
    return 2 if config is not None and config.arch == "bicubic_pp" else 1


@torch.no_grad()
def super_resolve(model: nn.Module, lr: Tensor) -> Tensor:
    """Upscale ``lr`` (N, 3, H, W) float RGB in [0, 1] -> (N, 3, sH, sW) clamped to [0, 1].

    Runs in the model's own dtype/device; flips to BGR and back for weights trained on BGR.
    """
    param = next(model.parameters())
    x = lr.to(device=param.device, dtype=param.dtype)
    bgr = bool(getattr(model.config, "bgr", False))
    if bgr:
        x = x.flip(1)
    y = model(x)
    if bgr:
        y = y.flip(1)
    return y.clamp_(0.0, 1.0).to(lr.dtype)


def resolve_device(name: str | None) -> torch.device:
    """``auto``/None -> CUDA when available else CPU; ``cuda`` without a GPU is a user error."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ReprError("--device cuda requested but no CUDA device is available (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ReprError(f"unknown device '{name}' (use cpu or cuda)") from None


class TorchUpscaler:
    """A PyTorch model bound to a device and precision, callable as an :data:`Upscaler`.

    fp16 (``half=True``, CUDA only) can overflow to inf/NaN on some weights -- Real-ESRGAN users
    see black frames. Every fp16 output is checked; a non-finite result is recomputed with an fp32
    copy of the model and reported once on stderr, so a bad tile or frame never reaches the file.
    """

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", half: bool = False,
                 channels_last: bool = False) -> None:
        device = torch.device(device)
        if half and device.type != "cuda":
            raise ReprError("--half needs --device cuda (fp16 convolutions are slow or missing on CPU)")
        self.model = model.eval().to(device)
        self._fp32: nn.Module | None = None
        if half:
            self._fp32 = copy.deepcopy(self.model).float()
            self.model = self.model.half()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.device, self.half = device, half
        self.scale = model_scale(model)
        self.radius, self.align = receptive_radius(model), tile_alignment(model)
        self.config = model.config  # type: ignore[union-attr]
        self._warned = False

    def __call__(self, lr: Tensor) -> Tensor:
        out = super_resolve(self.model, lr)
        if self._fp32 is not None and not torch.isfinite(out).all():
            if not self._warned:
                print("warning: fp16 produced inf/NaN; recomputing those inputs in fp32", file=sys.stderr)
                self._warned = True
            out = super_resolve(self._fp32, lr)
        return out.cpu()


def as_upscaler(model: nn.Module | Upscaler) -> tuple[Upscaler, int, int, int]:
    """``(callable, scale, radius, alignment)`` for a module or an already-bound upscaler."""
    if isinstance(model, nn.Module):
        run = lambda x: super_resolve(model, x)  # noqa: E731
        return run, model_scale(model), receptive_radius(model), tile_alignment(model)
    scale = int(getattr(model, "scale"))  # noqa: B009 - a bound upscaler must say its scale
    return model, scale, int(getattr(model, "radius", 16)), int(getattr(model, "align", 1))


def _tile_starts(size: int, tile: int) -> list[int]:
    return list(range(0, size, tile)) or [0]


@torch.no_grad()
def upscale_tiled(model: nn.Module | Upscaler, lr: Tensor, tile: int = 0,
                  tile_pad: int | None = None) -> Tensor:
    """Upscale ``lr`` (N, 3, H, W) tile by tile; ``tile <= 0`` runs the whole image at once.

    Each ``tile x tile`` block is run with up to ``tile_pad`` LR pixels of real neighbouring
    context on every side (cropped away afterwards). Convolutions with zero padding only differ
    at the *image* border, and every output pixel depends on at most ``radius`` LR pixels per
    side, so with ``tile_pad >= radius`` each kept output pixel sees exactly the context it sees
    untiled: the result equals untiled inference (up to float summation order). ``tile_pad``
    defaults to the model's radius. Output is on the CPU in ``lr``'s dtype; memory is bounded by
    one padded tile plus the output image.
    """
    run, scale, radius, align = as_upscaler(model)
    n, c, h, w = lr.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return run(lr).to("cpu", lr.dtype)
    pad = radius if tile_pad is None else tile_pad
    tile = math.ceil(tile / align) * align
    pad = math.ceil(pad / align) * align
    out = torch.empty(n, c, h * scale, w * scale, dtype=lr.dtype)
    for y0 in _tile_starts(h, tile):
        for x0 in _tile_starts(w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - pad, 0), max(x0 - pad, 0)
            py1, px1 = min(y1 + pad, h), min(x1 + pad, w)
            sr = run(lr[:, :, py0:py1, px0:px1]).to("cpu", lr.dtype)
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                sr[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    return out
