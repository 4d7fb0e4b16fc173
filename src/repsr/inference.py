"""Running a super-resolution model on image tensors: channel order, precision, tiling, devices.

Every command that produces SR pixels (eval, upscale, study) goes through :func:`super_resolve`,
so BGR-trained weights, clamping and no-grad handling live in one place. :func:`upscale_to_pixels`
bounds memory on huge images (Real-ESRGAN users' most common complaint) without tile seams: each
tile is run with ``tile_pad`` pixels of real context, and as long as that context covers the
network's receptive-field radius the stitched result equals the untiled one up to float rounding
(at most one uint8 level, in a few values per million; see :func:`upscale_tiled`).
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from repsr.errors import ReprError
from repsr.imageio import LoadedImage, quantize

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


@dataclass(frozen=True)
class Tile:
    """One tile: the LR ``rows``/``cols`` it produces, and the ``context`` window it is run on."""

    rows: slice
    cols: slice
    context_rows: slice
    context_cols: slice

    def crop(self, scale: int) -> tuple[slice, slice]:
        """Where this tile's output sits inside the upscaled context window."""
        top = (self.rows.start - self.context_rows.start) * scale
        left = (self.cols.start - self.context_cols.start) * scale
        return (slice(top, top + (self.rows.stop - self.rows.start) * scale),
                slice(left, left + (self.cols.stop - self.cols.start) * scale))

    def target(self, scale: int) -> tuple[slice, slice]:
        """Where this tile's output sits in the whole upscaled image."""
        return (slice(self.rows.start * scale, self.rows.stop * scale),
                slice(self.cols.start * scale, self.cols.stop * scale))


def plan_tiles(height: int, width: int, tile: int, pad: int, align: int = 1) -> list[Tile]:
    """Cover an ``height x width`` LR image with tiles of ``tile`` (0: one tile) and ``pad`` context.

    Tile size and context are rounded up to ``align`` so strided models keep their sampling grid.
    """
    if tile <= 0 or (height <= tile and width <= tile):
        whole = (slice(0, height), slice(0, width))
        return [Tile(*whole, *whole)]
    tile, pad = math.ceil(tile / align) * align, math.ceil(pad / align) * align
    tiles = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            tiles.append(Tile(slice(y0, y1), slice(x0, x1), slice(max(y0 - pad, 0), min(y1 + pad, height)),
                              slice(max(x0 - pad, 0), min(x1 + pad, width))))
    return tiles


@torch.no_grad()
def upscale_tiled(model: nn.Module | Upscaler, lr: Tensor, tile: int = 0,
                  tile_pad: int | None = None) -> Tensor:
    """Upscale ``lr`` (N, 3, H, W) tile by tile; ``tile <= 0`` runs the whole image at once.

    Each ``tile x tile`` block is run with up to ``tile_pad`` LR pixels of real neighbouring
    context on every side (cropped away afterwards). Convolutions with zero padding only differ
    at the *image* border, and every output pixel depends on at most ``radius`` LR pixels per
    side, so with ``tile_pad >= radius`` each kept output pixel sees exactly the context it sees
    untiled: the result equals untiled inference up to float summation order (convolution
    kernels block their sums differently for different input sizes: ~1e-7 relative in float32,
    which moves a uint8 value by 1 where it sits at a rounding boundary). ``tile_pad`` defaults
    to the model's radius. Output is on the CPU in ``lr``'s dtype (a float tensor of the whole
    output: images go through :func:`upscale_to_pixels`, which never holds one).
    """
    run, scale, radius, align = as_upscaler(model)
    n, c, h, w = lr.shape
    tiles = plan_tiles(h, w, tile, radius if tile_pad is None else tile_pad, align)
    if len(tiles) == 1:
        return run(lr).to("cpu", lr.dtype)
    out = torch.empty(n, c, h * scale, w * scale, dtype=lr.dtype)
    for t in tiles:
        sr = run(lr[:, :, t.context_rows, t.context_cols]).to("cpu", lr.dtype)
        rows, cols = t.crop(scale)
        out[(..., *t.target(scale))] = sr[:, :, rows, cols]
    return out


@torch.no_grad()
def upscale_to_pixels(model: nn.Module | Upscaler, image: LoadedImage, out: np.ndarray, tile: int = 0,
                      tile_pad: int | None = None, on_tile: Callable[[int], None] | None = None) -> None:
    """Upscale ``image``'s colour into ``out`` (sH, sW, 1|3), uint8 or uint16, tile by tile.

    Why this exists beside :func:`upscale_tiled`: a 6000x4000 photo at x4 is 1.15 GB as uint8
    but 4.6 GB as float32, plus as much again for every network activation when run whole.
    Here each tile's context window is converted to float, run, quantised (rounded to nearest)
    and written into its place in ``out`` (which may be a channel view of a larger array), so
    memory is ``out`` plus one tile's working set. One channel in ``out`` stores the mean of the
    network's RGB (a gray source stays gray). ``on_tile(n)`` is called after every tile with the
    number of tiles in all. Equality with untiled inference: as :func:`upscale_tiled`.
    """
    run, scale, radius, align = as_upscaler(model)
    h, w = image.pixels.shape[:2]
    if out.shape[:2] != (h * scale, w * scale) or out.shape[2] not in (1, 3):
        raise ValueError(f"output of shape {out.shape} does not fit a x{scale} upscale of {w}x{h}")
    depth = 16 if out.dtype == np.uint16 else 8
    tiles = plan_tiles(h, w, tile, radius if tile_pad is None else tile_pad, align)
    for t in tiles:
        lr = torch.from_numpy(image.colour(t.context_rows, t.context_cols)).permute(2, 0, 1)[None]
        rows, cols = t.crop(scale)
        sr = run(lr)[0, :, rows, cols].permute(1, 2, 0).numpy()
        if out.shape[2] == 1:
            sr = sr.mean(axis=2, keepdims=True)
        out[t.target(scale)] = quantize(sr, depth)
        if on_tile is not None:
            on_tile(len(tiles))
