"""The NTIRE 2023 real-time SR challenge score, as its organisers computed it (SPEC section 3).

``S = 2 * 2^(P - P_bic) / (0.1 * sqrt(t_ms))`` when ``P > P_bic``, else 0: every dB over the
bicubic baseline doubles the score, and a 4x faster runtime doubles it too. ``P`` is PSNR (RGB,
no border crop in the challenge) and ``t_ms`` the runtime of one 720p -> 4K (x3) frame in
milliseconds. Which bicubic gives ``P_bic`` moves the score by ~2^0.1 (MATLAB/Pillow a = -0.5 vs
PyTorch/OpenCV a = -0.75), so a score is only meaningful next to the name of that kernel.

``repsr ntire WEIGHTS --data DIR`` (:mod:`repsr.commands.ntire`) prints the PSNR table of a model
next to both bicubics on clean and NTIRE LR; the scale is the model's. The images are scored by
:func:`repsr.evaluate.score_sets`, the one scoring loop, with this protocol's metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from repsr.bench import BenchResult
from repsr.data.datasets import find_dataset
from repsr.data.degrade import DegradeKind, degrade, modcrop
from repsr.data.images import Pair
from repsr.data.imresize import imresize
from repsr.evaluate import build_datasets, score_sets
from repsr.metrics import psnr

# The bicubic baselines a score may be computed against, by the name repsr prints.
BICUBIC_KERNELS = {
    "matlab": "MATLAB imresize bicubic (a = -0.5, antialiased)",
    "pillow": "Pillow bicubic (a = -0.5)",
    "torch": "PyTorch interpolate bicubic (a = -0.75)",
    "opencv": "OpenCV INTER_CUBIC (a = -0.75)",
}


@dataclass(frozen=True)
class ChallengeScore:
    """A score with everything needed to read it: inputs, baseline kernel, and the value."""

    score: float
    psnr: float
    psnr_bicubic: float
    ms: float
    kernel: str

    def __str__(self) -> str:
        return (f"NTIRE score {self.score:.3f} (PSNR {self.psnr:.3f} dB vs {self.kernel} bicubic "
                f"{self.psnr_bicubic:.3f} dB, {self.ms:.2f} ms)")


def score_value(psnr: float, psnr_bicubic: float, ms: float) -> float:
    """``2 * 2^(P - P_bic) / (0.1 * sqrt(ms))``, or 0 when the model does not beat bicubic."""
    if not ms > 0 or not math.isfinite(ms):
        raise ValueError(f"runtime must be a positive number of milliseconds, got {ms}")
    if not psnr > psnr_bicubic:
        return 0.0
    gain: float = 2.0 ** (psnr - psnr_bicubic)  # a float: typeshed types float ** float as Any (it may be complex)
    return 2.0 * gain / (0.1 * math.sqrt(ms))


def challenge_score(psnr: float, psnr_bicubic: float, ms: float, kernel_name: str) -> ChallengeScore:
    """The NTIRE 2023 score of a run, tagged with the bicubic kernel ``psnr_bicubic`` came from.

    ``kernel_name`` is one of :data:`BICUBIC_KERNELS` (``matlab``, ``pillow``, ``torch``,
    ``opencv``): a score without its baseline kernel cannot be compared with another.
    """
    if kernel_name not in BICUBIC_KERNELS:
        raise ValueError(f"unknown bicubic kernel '{kernel_name}' (choose from {', '.join(BICUBIC_KERNELS)})")
    return ChallengeScore(score_value(psnr, psnr_bicubic, ms), psnr, psnr_bicubic, ms, kernel_name)


def bench_score_lines(result: BenchResult, psnr: float, psnr_bicubic: float, kernel: str) -> list[str]:
    """One ``NTIRE score`` line per network row of a ``repsr bench`` result at 1280x720x3.

    The challenge timed exactly that input (720p -> 4K, x3), on a GPU in fp16; a CPU time gives a
    score on the same formula but not the challenge's protocol, and the line says which device.
    """
    lines = []
    for row in result.rows:
        if row.gflop is not None and row.size == "1280x720x3":
            s = challenge_score(psnr, psnr_bicubic, row.ms, kernel)
            lines.append(f"{row.name} ({row.threads} thr, {result.device}): {s}")
    return lines


# An upscaler maps a uint8 LR image ((H, W) gray or (H, W, 3) RGB) to uint8 at ``scale`` times its size.
Upscale = Callable[[np.ndarray, int], np.ndarray]


def torch_bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """PyTorch ``interpolate(mode="bicubic")`` (a = -0.75, no antialiasing), rounded to uint8."""
    x = torch.from_numpy(lr.astype(np.float32))
    x = x[None, None] if lr.ndim == 2 else x.permute(2, 0, 1)[None]
    y = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)[0]
    y = y[0] if lr.ndim == 2 else y.permute(1, 2, 0)
    out: np.ndarray = np.clip(np.rint(y.numpy()), 0, 255).astype(np.uint8)
    return out


def matlab_bicubic_up(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(lr, scale, 'bicubic')`` (a = -0.5), the field's bicubic baseline."""
    return imresize(lr, scale)


def degraded(pair: Pair, scale: int, degradation: DegradeKind) -> Pair:
    """``pair`` as scored under ``degradation``: as it is for ``"bicubic"`` (the set's own MATLAB LR),
    else LR made from the mod-cropped HR by :func:`repsr.data.degrade.degrade` (``"ntire"``)."""
    if degradation == "bicubic":
        return pair
    hr = modcrop(pair.hr, scale)
    return Pair(hr=hr, lr=degrade(hr, scale, kind=degradation), name=pair.name)


def samples(folder: str | Path, scale: int, degradation: DegradeKind) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(hr, lr)`` uint8 pairs of a set under ``degradation`` (see :func:`degraded`)."""
    for pair in find_dataset(folder, scale):
        scored = degraded(pair, scale, degradation)
        yield scored.hr, scored.lr


def score_methods(methods: dict[str, Upscale], folder: str | Path, scale: int,
                  degradation: DegradeKind) -> dict[str, dict[str, float]]:
    """Mean PSNR per method: ``y`` (Y channel, crop border = scale, the field's convention) and
    ``rgb`` (RGB, no border crop, the NTIRE protocol). Every method sees the very same LR."""
    metrics = {"y": lambda sr, hr: psnr(sr, hr, scale, y_channel=True),
               "rgb": lambda sr, hr: psnr(sr, hr, 0, y_channel=False)}
    upscalers = {name: (lambda lr, up=up: up(lr, scale)) for name, up in methods.items()}
    sets = build_datasets([folder], scale)
    results = score_sets(upscalers, sets, metrics, prepare=partial(degraded, scale=scale, degradation=degradation))
    return {name: {"y": r.mean("y"), "rgb": r.mean("rgb"), "images": len(r.images)}
            for name, by_set in results.items() for r in by_set.values()}


__all__ = ["BICUBIC_KERNELS", "ChallengeScore", "bench_score_lines", "challenge_score", "degraded", "matlab_bicubic_up",
           "samples", "score_methods", "score_value", "torch_bicubic"]
