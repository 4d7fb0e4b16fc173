"""The one loading path for a model to *run*: shipped name, weights file or ONNX file.

:mod:`repsr.hub` resolves names and weights files to PyTorch modules (networks and data layer);
an ``.onnx`` file needs onnxruntime (the running layer), so the choice between the two lives here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from repsr.errors import ReprError
from repsr.export.onnx import OnnxUpscaler
from repsr.hub import model_path, resolve_model


def is_onnx(name_or_path: str | Path) -> bool:
    return Path(name_or_path).suffix.lower() == ".onnx"


def load_runner(name_or_path: str, device: str | torch.device = "cpu", bgr: bool | None = None,
                threads: int = 0) -> nn.Module | OnnxUpscaler:
    """A model to run: a PyTorch module for weights files and shipped names, or for an ``.onnx``
    file an :class:`OnnxUpscaler` (onnxruntime on the CPU; fp32 or INT8).

    Both are accepted by :func:`repsr.inference.as_upscaler` and :func:`repsr.evaluate.evaluate`.
    ``threads`` is onnxruntime's intra-op thread count (0: its default).
    """
    path = model_path(name_or_path)
    if not is_onnx(path):
        return resolve_model(name_or_path, device=device, bgr=bgr)
    if str(device) not in ("cpu", "auto"):
        raise ReprError(f"{path}: an ONNX model runs on the CPU with onnxruntime (use --device cpu)")
    return OnnxUpscaler(path, threads=threads, bgr=bgr)
