"""Study 2: find BN artifacts, quantify them, and show them next to the fixed network.

BN artifacts (SPEC §1) are odd colours in *smooth* regions: a network trained with mini-batch
statistics but run on population statistics normalises flat patches wrongly. So besides the
per-image PSNR drop we measure a local statistic: the mean absolute error (0-255, RGB) inside
smooth 16x16 blocks of the ground truth (Y standard deviation below ``SMOOTH_STD``), next to the
same error in textured blocks. Artifacts raise the first much more than the second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import nn

from repsr.data.datasets import find_dataset
from repsr.data.images import Pair
from repsr.evaluate import matlab_bicubic, pixel_upscaler
from repsr.imageio import write_image
from repsr.metrics import psnr, rgb_to_y

BLOCK = 16
SMOOTH_STD = 3.0  # Y levels (0-255): below this a 16x16 block counts as smooth


@dataclass
class ImageArtifacts:
    """Per-image comparison of a baseline and a fixed network."""

    dataset: str
    name: str
    psnr_baseline: float
    psnr_fixed: float
    smooth_err_baseline: float
    smooth_err_fixed: float
    textured_err_baseline: float
    textured_err_fixed: float

    @property
    def gain(self) -> float:
        """PSNR (dB) the fix gains on this image over the baseline (negative: it loses)."""
        return self.psnr_fixed - self.psnr_baseline


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def block_errors(sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean |sr - hr| per 16x16 block, smooth mask per block)`` on the whole-block grid."""
    h, w = (hr.shape[0] // BLOCK) * BLOCK, (hr.shape[1] // BLOCK) * BLOCK
    err = np.abs(_rgb(sr)[:h, :w].astype(np.float64) - _rgb(hr)[:h, :w]).mean(axis=2)
    err = err.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))
    y = rgb_to_y(_rgb(hr))[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    smooth = y.std(axis=(1, 3)) < SMOOTH_STD
    return err, smooth


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def compare(baseline: nn.Module, fixed: nn.Module, eval_sets: list[str],
            scale: int) -> Iterator[tuple[ImageArtifacts, Pair, list[np.ndarray], np.ndarray, np.ndarray]]:
    """Yield ``(ImageArtifacts, sample, [sr_baseline, sr_fixed], baseline block errors, smooth mask)``."""
    upscalers = [pixel_upscaler(m) for m in (baseline, fixed)]
    for path in eval_sets:
        dataset = find_dataset(path, scale)
        for pair in dataset.pairs:
            sample = dataset.load(pair)
            srs = [up(sample.lr) for up in upscalers]
            (eb, smooth), (ef, _) = (block_errors(sr, sample.hr) for sr in srs)
            psnr_baseline, psnr_fixed = (psnr(sr, sample.hr, scale) for sr in srs)
            result = ImageArtifacts(
                dataset.name, pair.name, psnr_baseline, psnr_fixed,
                _masked_mean(eb, smooth), _masked_mean(ef, smooth),
                _masked_mean(eb, ~smooth), _masked_mean(ef, ~smooth),
            )
            yield result, sample, srs, eb, smooth


def _worst_smooth_block(errors: np.ndarray, smooth: np.ndarray) -> tuple[int, int]:
    masked = np.where(smooth, errors, -1.0)
    if masked.max() < 0:
        masked = errors
    by, bx = np.unravel_index(int(np.argmax(masked)), masked.shape)
    return int(by) * BLOCK + BLOCK // 2, int(bx) * BLOCK + BLOCK // 2


def side_by_side(panels: list[tuple[str, np.ndarray]], centre: tuple[int, int], size: int, zoom: int = 2) -> np.ndarray:
    """Crops of equal-size images around ``centre``, enlarged ``zoom`` x (nearest) with captions."""
    h, w = panels[0][1].shape[:2]
    size = min(size, h, w)
    top = int(np.clip(centre[0] - size // 2, 0, h - size))
    left = int(np.clip(centre[1] - size // 2, 0, w - size))
    tiles = []
    for caption, img in panels:
        crop = Image.fromarray(_rgb(img)[top : top + size, left : left + size]).resize(
            (size * zoom, size * zoom), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (size * zoom, size * zoom + 18), "white")
        canvas.paste(crop, (0, 18))
        ImageDraw.Draw(canvas).text((4, 3), caption, fill="black")
        tiles.append(np.asarray(canvas))
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)


def artifact_study(baseline: nn.Module, fixed: nn.Module, eval_sets: list[str], scale: int, out_dir: Path,
                   labels: tuple[str, str], crops: int = 3, crop_size: int = 96) -> list[ImageArtifacts]:
    """Score every image, write crops of the ``crops`` images where the fix gains most; return rows."""
    rows, kept = [], []
    for result, sample, srs, errors, smooth in compare(baseline, fixed, eval_sets, scale):
        rows.append(result)
        kept.append((result.gain, result, sample, srs, errors, smooth))
        kept = sorted(kept, key=lambda k: -k[0])[:crops]
    out_dir.mkdir(parents=True, exist_ok=True)
    for rank, (_, result, sample, srs, errors, smooth) in enumerate(kept, 1):
        panels = [("HR", sample.hr), ("bicubic", matlab_bicubic(scale)(sample.lr)),
                  (f"{labels[0]} {result.psnr_baseline:.2f}dB", srs[0]),
                  (f"{labels[1]} {result.psnr_fixed:.2f}dB", srs[1])]
        image = side_by_side(panels, _worst_smooth_block(errors, smooth), crop_size)
        write_image(out_dir / f"artifacts_{rank}_{result.dataset}_{result.name}.png", image)
    return rows
