"""Tiling: running an :class:`~repsr.inference.upscaler.Upscaler` on images too large to run whole.

:func:`upscale_to_pixels`
bounds memory on huge images (Real-ESRGAN users' most common complaint) without tile seams: each
tile is run with ``tile_pad`` pixels of real context, and as long as that context covers the
network's receptive-field radius the stitched result equals the untiled one up to float rounding
(at most one uint8 level, in a few values per million; see :func:`upscale_tiled`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from repsr.imageio import LoadedImage, quantize
from repsr.inference.upscaler import Upscaler, as_upscaler


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
    to the radius the model declares. Output is on the CPU in ``lr``'s dtype (a float tensor of the whole
    output: images go through :func:`upscale_to_pixels`, which never holds one).
    """
    run = as_upscaler(model)
    scale, radius, align = run.scale, run.receptive_radius, run.tile_alignment
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
    run = as_upscaler(model)
    scale, radius, align = run.scale, run.receptive_radius, run.tile_alignment
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
