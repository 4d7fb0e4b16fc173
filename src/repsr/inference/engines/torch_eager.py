"""PyTorch eager: the reference engine. Every other engine's fp32 output is held against this one.

Reads repsr's ``.safetensors`` and the ``.pth`` layouts :mod:`repsr.weights` knows; writes
``.safetensors`` (rebuilds itself) and Real-ESRGAN's Compact ``.pth``. The only engine for CUDA fp16
(``TorchUpscaler`` keeps its inf/NaN fallback to fp32).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from repsr.errors import UserError
from repsr.inference.engines.spec import Engine, LoadRequest, Timed
from repsr.inference.upscaler import TorchUpscaler, Upscaler, resolve_device
from repsr.weights import save_compact_pth, save_model

WEIGHTS = (".safetensors", ".pth", ".pt")


def _load(request: LoadRequest) -> Upscaler:
    if request.precision == "fp16" and resolve_device(request.device).type != "cuda":
        raise UserError("--precision fp16 with PyTorch needs --device cuda (fp16 convs are slow or missing on CPU)")
    return TorchUpscaler(request.module(), resolve_device(request.device), half=request.precision == "fp16",
                         channels_last=request.channels_last)


def _export(model: nn.Module, path: Path) -> None:
    if path.suffix.lower() == ".safetensors":
        save_model(model, path)
    else:
        save_compact_pth(model, path)


def _bench(model: nn.Module, x: torch.Tensor, threads: int) -> list[Timed]:
    """Merged net in NCHW (the reference of "x eager"), channels_last, and fp16 on CUDA."""
    nchw = model.eval().to(x.device)
    cl = copy.deepcopy(nchw).to(  # type: ignore[call-overload]  # Module.to's stub lacks memory_format
        memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    rows = [Timed("merged fp32 NCHW", lambda: nchw(x)), Timed("merged fp32 channels_last", lambda: cl(x_cl))]
    if x.device.type == "cuda":
        half, x_half = copy.deepcopy(cl).half(), x_cl.half()
        rows.append(Timed("merged fp16 channels_last", lambda: half(x_half)))
    return rows


def _native() -> frozenset[str]:
    return frozenset({"fp32", "fp16"}) if torch.cuda.is_available() else frozenset({"fp32"})


ENGINE = Engine(name="eager", runtime="PyTorch eager", loader=_load, reads=WEIGHTS, writes=(".safetensors", ".pth"),
                exporter=_export, precisions=("fp32", "fp16"), devices=("cpu", "cuda"), native=_native,
                bench=_bench)
