"""What an INT8 file costs: its PSNR next to the fp32 model's on the same sets, run where the file will run.

``repsr quantize --val`` prints an :class:`Int8Drop` and refuses a file whose worst set loses more than
``--max-drop``. Both models go through :func:`repsr.evaluate.evaluate_many` (each image decoded once, the same
LR for both), the INT8 file on the runtime named (onnxruntime or OpenVINO) on this CPU: integer kernels differ
between runtimes and CPUs (docs/deploy.md), so the drop is measured, not assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from repsr.cpu import describe
from repsr.evaluate import evaluate_many
from repsr.inference import Upscaler, load_upscaler


@dataclass(frozen=True)
class SetDrop:
    """Mean Y PSNR (dB, crop border = scale) of the fp32 model and the INT8 file on one set, and the loss."""

    name: str
    fp32_psnr: float
    int8_psnr: float
    drop: float  # fp32 - INT8: positive when INT8 loses


@dataclass(frozen=True)
class Int8Drop:
    """The per-set drops of one INT8 file, and where they were measured."""

    engine: str  # the runtime that ran the INT8 file
    cpu: str  # this CPU, as repsr.cpu.describe says it
    scale: int
    sets: tuple[SetDrop, ...]

    @property
    def worst(self) -> SetDrop:
        """The set that loses most."""
        return max(self.sets, key=lambda s: s.drop)


def measure_int8_drop(fp32: nn.Module | Upscaler, int8_path: str | Path, folders: Sequence[str | Path], scale: int,
                      backend: str = "onnx") -> Int8Drop:
    """Score ``fp32`` and the INT8 file ``int8_path`` (run by ``backend``) side by side on ``folders``."""
    int8 = load_upscaler(str(int8_path), backend)
    results = evaluate_many({"fp32": fp32, "int8": int8}, folders, scale, progress=False)
    sets = tuple(SetDrop(name, r.psnr, q.psnr, r.psnr - q.psnr)
                 for (name, r), q in zip(results["fp32"].items(), results["int8"].values(), strict=True))
    return Int8Drop(str(getattr(int8, "engine", backend)), describe(), scale, sets)


__all__ = ["Int8Drop", "SetDrop", "measure_int8_drop"]
