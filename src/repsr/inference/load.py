"""The one loading path for a model to *run*: shipped name, weights file or ONNX file, on torch or onnxruntime.

:mod:`repsr.hub` resolves names and weights files to PyTorch modules (networks and data layer); an
``.onnx`` file needs onnxruntime, so the choice between the two engines lives here.
:func:`load_runner` gives the module itself (``repsr bench`` counts its convs, ``repsr quantize``
exports it); :func:`load_upscaler` gives a bound :class:`~repsr.inference.upscaler.Upscaler`.
A training graph is merged on load (equal output, faster); a shipped file, already merged, is not
merged again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from repsr.errors import UserError
from repsr.export.onnx import OnnxUpscaler, export_onnx
from repsr.hub import model_path, resolve_model
from repsr.inference.compiled import CompiledUpscaler, choose_backend
from repsr.inference.upscaler import TorchUpscaler, Upscaler, resolve_device
from repsr.reparam.base import Fusable
from repsr.reparam.convert import reparameterize


def is_onnx(name_or_path: str | Path) -> bool:
    return Path(name_or_path).suffix.lower() == ".onnx"


def merged(model: nn.Module) -> nn.Module:
    """``model`` in its inference form: merged when it holds a training-time block, else itself."""
    needs = any(isinstance(m, Fusable) for m in model.modules())
    return reparameterize(model) if needs else model


def load_runner(name_or_path: str, device: str | torch.device = "cpu", bgr: bool | None = None,
                threads: int = 0) -> nn.Module | OnnxUpscaler:
    """A model to run as loaded: a PyTorch module for weights files and shipped names, or for an
    ``.onnx`` file an :class:`OnnxUpscaler` (onnxruntime on the CPU; fp32 or INT8).

    ``threads`` is onnxruntime's intra-op thread count (0: its default).
    """
    path = model_path(name_or_path)
    if not is_onnx(path):
        return resolve_model(name_or_path, device=device, bgr=bgr)
    if str(device) not in ("cpu", "auto"):
        raise UserError(f"{path}: an ONNX model runs on the CPU with onnxruntime (use --device cpu)")
    return OnnxUpscaler(path, threads=threads, bgr=bgr)


def load_upscaler(name_or_path: str, backend: str | None = None, device: str | None = "cpu", half: bool = False,
                  bgr: bool | None = None, threads: int = 0, workload_mpix: float = 0.0,
                  channels_last: bool = True) -> Upscaler:
    """``name_or_path`` bound to an engine: ``eager`` PyTorch, ``compile`` (torch.compile) or ``onnx`` (onnxruntime).

    ``backend`` None or ``auto`` picks with :func:`~repsr.inference.compiled.choose_backend` from the run's
    input megapixels (``workload_mpix``). A weights file run by onnxruntime is merged and exported to a
    temporary ONNX file first. PyTorch weights are kept ``channels_last``: images arrive as (H, W, C) pixels,
    so the input is channels_last already, and oneDNN's channels_last convs ran the merged 16-channel nets
    1.2-1.6x faster than NCHW with bit-identical outputs (docs/benchmarks.md); ``channels_last=False`` is the
    plain NCHW model, for comparison.
    """
    path = model_path(name_or_path)
    backend = choose_backend(backend, is_onnx(path), workload_mpix, half)
    if backend == "onnx":
        if half or device not in (None, "auto", "cpu"):
            raise UserError("--backend onnx runs on the CPU in fp32 with onnxruntime (drop --half/--device)")
        if is_onnx(path):
            return OnnxUpscaler(path, threads=threads, bgr=bgr)
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(merged(resolve_model(str(path), bgr=bgr)), Path(tmp) / "model.onnx")
            return OnnxUpscaler(Path(tmp) / "model.onnx", threads=threads)
    if is_onnx(path):
        raise UserError(f"{path}: an ONNX model needs --backend onnx (onnxruntime)")
    if backend == "compile" and half:
        raise UserError("--backend compile runs fp32 (drop --half, or use --backend eager)")
    eager = TorchUpscaler(merged(resolve_model(str(path), bgr=bgr)), resolve_device(device), half=half,
                          channels_last=channels_last)
    return CompiledUpscaler(eager) if backend == "compile" else eager
