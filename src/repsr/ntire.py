"""The NTIRE 2023 real-time SR challenge score, as its organisers computed it (SPEC section 3).

``S = 2 * 2^(P - P_bic) / (0.1 * sqrt(t_ms))`` when ``P > P_bic``, else 0: every dB over the
bicubic baseline doubles the score, and a 4x faster runtime doubles it too. ``P`` is PSNR (RGB,
no border crop in the challenge) and ``t_ms`` the runtime of one 720p -> 4K (x3) frame in
milliseconds. Which bicubic gives ``P_bic`` moves the score by ~2^0.1 (MATLAB/Pillow a = -0.5 vs
PyTorch/OpenCV a = -0.75), so a score is only meaningful next to the name of that kernel.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    return 2.0 * 2.0 ** (psnr - psnr_bicubic) / (0.1 * math.sqrt(ms))


def challenge_score(psnr: float, psnr_bicubic: float, ms: float, kernel_name: str) -> ChallengeScore:
    """The NTIRE 2023 score of a run, tagged with the bicubic kernel ``psnr_bicubic`` came from.

    ``kernel_name`` is one of :data:`BICUBIC_KERNELS` (``matlab``, ``pillow``, ``torch``,
    ``opencv``): a score without its baseline kernel cannot be compared with another.
    """
    if kernel_name not in BICUBIC_KERNELS:
        raise ValueError(f"unknown bicubic kernel '{kernel_name}' (choose from {', '.join(BICUBIC_KERNELS)})")
    return ChallengeScore(score_value(psnr, psnr_bicubic, ms), psnr, psnr_bicubic, ms, kernel_name)


def bench_score_lines(result: dict, psnr: float, psnr_bicubic: float, kernel: str) -> list[str]:
    """One ``NTIRE score`` line per network row of a ``repsr bench`` result at 1280x720x3.

    The challenge timed exactly that input (720p -> 4K, x3), on a GPU in fp16; a CPU time gives a
    score on the same formula but not the challenge's protocol, and the line says which device.
    """
    lines = []
    for row in result.get("rows", []):
        if row.get("gflop") is not None and row.get("size") == "1280x720x3":
            s = challenge_score(psnr, psnr_bicubic, row["ms"], kernel)
            lines.append(f"{row['name']} ({row['threads']} thr, {result.get('device', '?')}): {s}")
    return lines


# An upscaler maps a uint8 LR image ((H, W) gray or (H, W, 3) RGB) to uint8 at ``scale`` times its size.
Upscale = Callable[[np.ndarray, int], np.ndarray]


def torch_bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """PyTorch ``interpolate(mode="bicubic")`` (a = -0.75, no antialiasing), rounded to uint8."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(lr.astype(np.float32))
    x = x[None, None] if lr.ndim == 2 else x.permute(2, 0, 1)[None]
    y = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)[0]
    y = y[0] if lr.ndim == 2 else y.permute(1, 2, 0)
    return np.clip(np.rint(y.numpy()), 0, 255).astype(np.uint8)


def matlab_bicubic_up(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(lr, scale, 'bicubic')`` (a = -0.5), the field's bicubic baseline."""
    from repsr.data.imresize import imresize

    return imresize(lr, scale)


def samples(folder: str | Path, scale: int, degradation: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(hr, lr)`` uint8 pairs of a set: its own MATLAB ``LR_bicubic`` files for ``"bicubic"``,
    else LR made from the mod-cropped HR by :func:`repsr.data.degrade.degrade` (``"ntire"``)."""
    from repsr.data.datasets import find_dataset
    from repsr.data.degrade import degrade, modcrop

    for sample in find_dataset(folder, scale):
        if degradation == "bicubic":
            yield sample.hr, sample.lr
        else:
            hr = modcrop(sample.hr, scale)
            yield hr, degrade(hr, scale, kind=degradation)


def score_methods(methods: dict[str, Upscale], folder: str | Path, scale: int,
                  degradation: str) -> dict[str, dict[str, float]]:
    """Mean PSNR per method: ``y`` (Y channel, crop border = scale, the field's convention) and
    ``rgb`` (RGB, no border crop, the NTIRE protocol). Every method sees the very same LR."""
    from repsr.metrics import psnr

    sums = {name: [0.0, 0.0] for name in methods}
    count = 0
    for hr, lr in samples(folder, scale, degradation):
        count += 1
        for name, up in methods.items():
            sr = up(lr, scale)
            sums[name][0] += psnr(sr, hr, scale, y_channel=True)
            sums[name][1] += psnr(sr, hr, 0, y_channel=False)
    return {name: {"y": y / count, "rgb": rgb / count, "images": count} for name, (y, rgb) in sums.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m repsr.ntire WEIGHTS --data DIR --scale 3 [--bgr] [--ms T]``: the Bicubic++ table."""
    from repsr.evaluate import upscale
    from repsr.weights import load_model

    p = argparse.ArgumentParser(prog="python -m repsr.ntire", description="PSNR of a model next to MATLAB and "
                                "PyTorch bicubic on clean (MATLAB) and NTIRE (Pillow + JPEG 90) LR.")
    p.add_argument("weights")
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--bgr", action="store_true", help="weights expect BGR input (the official Bicubic++)")
    p.add_argument("--degradation", nargs="+", default=["bicubic", "ntire"], choices=["bicubic", "ntire"])
    p.add_argument("--methods", nargs="+", default=["model", "matlab", "torch"], choices=["model", "matlab", "torch"],
                   help="what to score (gains need matlab and torch)")
    p.add_argument("--ms", type=float, default=None, help="runtime (ms) to compute the challenge score with")
    args = p.parse_args(argv)
    model = load_model(args.weights, bgr=True if args.bgr else None)
    scale = model.config.scale
    every: dict[str, Upscale] = {"model": lambda lr, s: upscale(model, lr, s),
                                 "matlab": matlab_bicubic_up, "torch": torch_bicubic}
    methods = {name: every[name] for name in args.methods}
    print("| set | LR | method | PSNR Y (crop s) | PSNR RGB (no crop) | gain RGB vs matlab / torch |")
    print("|---|---|---|---|---|---|")
    for folder in args.data:
        for kind in args.degradation:
            res = score_methods(methods, folder, scale, kind)
            for name, r in res.items():
                gain = "-" if len(res) < 3 else \
                    f"{r['rgb'] - res['matlab']['rgb']:+.3f} / {r['rgb'] - res['torch']['rgb']:+.3f}"
                print(f"| {Path(folder).name} x{scale} | {kind} | {name} | {r['y']:.3f} | {r['rgb']:.3f} | {gain} |")
            if args.ms is not None and kind == "ntire" and len(res) == 3:
                for ref in ("matlab", "torch"):
                    print(challenge_score(res["model"]["rgb"], res[ref]["rgb"], args.ms, ref), file=sys.stderr)
    return 0


__all__ = ["BICUBIC_KERNELS", "ChallengeScore", "bench_score_lines", "challenge_score", "matlab_bicubic_up",
           "samples", "score_methods", "score_value", "torch_bicubic"]

if __name__ == "__main__":
    sys.exit(main())
