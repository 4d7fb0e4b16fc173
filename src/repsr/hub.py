"""Pretrained models shipped inside the package, addressable by name (``repsr-m4c16-x4``).

Shipped files live in ``repsr/pretrained/<name>.safetensors`` (merged nets, tens of KB each).
:func:`resolve_model` turns a user's ``--model`` argument -- a shipped name or a path -- into a
loaded model, so every command accepts both. :func:`load_runner` is the one loading path of
``repsr eval``, ``repsr bench`` and ``repsr upscale`` that also accepts the ``.onnx`` files
``repsr merge`` (fp32) and ``repsr quantize`` (INT8) write.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import nn

from repsr.errors import ReprError, WeightsError
from repsr.export.onnx import OnnxUpscaler
from repsr.weights import load_model

DEFAULT_MODEL = "repsr-m4c16-x{scale}"


def _pretrained_dir() -> Path:
    return Path(str(resources.files("repsr") / "pretrained"))


def shipped_models() -> list[str]:
    """Names of the models shipped with this installation."""
    return sorted(p.stem for p in _pretrained_dir().glob("*.safetensors"))


def default_model_name(scale: int) -> str:
    return DEFAULT_MODEL.format(scale=scale)


def model_path(name_or_path: str) -> Path:
    """The file behind a shipped name or a path, or a one-line error listing what exists."""
    candidate = _pretrained_dir() / f"{name_or_path}.safetensors"
    if candidate.is_file():
        return candidate
    path = Path(name_or_path)
    if path.is_file():
        return path
    names = ", ".join(shipped_models()) or "none"
    raise WeightsError(f"'{name_or_path}' is neither a file nor a shipped model (shipped: {names})")


def resolve_model(name_or_path: str, device: str | torch.device = "cpu", bgr: bool | None = None) -> nn.Module:
    """Load a shipped model by name, or any weights file by path, in eval mode.

    ``bgr=True`` marks weights trained on BGR images that cannot say so themselves (the official
    Bicubic++ ``.pth``); ``None`` keeps what the file says.
    """
    return load_model(model_path(name_or_path), device=device, bgr=bgr)


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
