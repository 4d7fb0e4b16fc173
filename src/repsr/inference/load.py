"""The one loader of a model the user named: a shipped name, a weights file in any layout, or a runtime's model file.

:func:`load_runner` dispatches by what the file is. PyTorch weights -- repsr's safetensors, which rebuild their
own network, and the foreign ``.pth``/safetensors layouts the family registry reads (Real-ESRGAN Compact, ETDS's
ECBSR, the official Bicubic++) -- load as a module through :func:`repsr.weights.load_model`; a model file of
another runtime (``.onnx``, ``.xml``, ``.param``, ``.pte``) loads on the engine of its format
(:mod:`repsr.inference.engines`). Commands that need the network itself (merge, prune, the study's references)
ask for ``network=True``, which refuses a runtime file in one line before loading it.

:func:`load_upscaler` binds the same source to the engine ``--backend`` names (``auto``:
:func:`~repsr.inference.engines.choose_engine`), for running on images. A training graph is merged on load (equal
output, faster); a shipped file, already merged, is not merged again.
"""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import nn

from repsr.errors import UserError
from repsr.hub import model_path
from repsr.inference.engines import LoadRequest, auto_precision, choose_engine, is_model_file, owner_of
from repsr.inference.upscaler import Upscaler
from repsr.weights import load_model


@overload
def load_runner(name_or_path: str, device: str | torch.device = ..., bgr: bool | None = ..., threads: int = ...,
                *, network: Literal[True]) -> nn.Module: ...


@overload
def load_runner(name_or_path: str, device: str | torch.device = ..., bgr: bool | None = ..., threads: int = ...,
                *, network: bool = ...) -> nn.Module | Upscaler: ...


def load_runner(name_or_path: str, device: str | torch.device = "cpu", bgr: bool | None = None, threads: int = 0,
                *, network: bool = False) -> nn.Module | Upscaler:
    """What ``name_or_path`` names, loaded as it is: a PyTorch module (eval mode, on ``device``) for a shipped name
    or weights file, or the upscaler of the engine of a model file's format (onnxruntime, OpenVINO, ...) on the CPU.

    ``bgr=True`` marks weights trained on BGR images that cannot say so themselves (the official Bicubic++
    ``.pth``); None keeps what the file says. ``threads`` is a model file's engine's intra-op thread count (0: its
    default). ``network=True``: only a PyTorch network will do, and a runtime's model file is a one-line error.
    """
    path = model_path(name_or_path)
    if not is_model_file(path):
        return load_model(path, device=device, bgr=bgr)
    owner = owner_of(path)
    if network:
        raise UserError(f"{name_or_path}: a {owner.runtime} model file, not PyTorch weights (.safetensors or .pth): "
                        "give the weights it was made from")
    return load_upscaler(name_or_path, owner.name, str(device), bgr=bgr, threads=threads)


def load_upscaler(name_or_path: str, backend: str | None = None, device: str | None = "cpu", half: bool = False,
                  bgr: bool | None = None, threads: int = 0, workload_mpix: float = 0.0,
                  channels_last: bool = True, precision: str | None = None) -> Upscaler:
    """``name_or_path`` bound to an engine (``backend`` None or ``auto``: chosen from the model, device,
    precision and the run's input megapixels ``workload_mpix``).

    ``precision`` None is the file's own (fp32 for float weights: exact); ``"auto"`` (the CLI's default) lets the
    engine run bf16 where this CPU does natively (:func:`~repsr.inference.engines.auto_precision`).
    ``half`` is the old spelling of ``precision="fp16"``. PyTorch weights are kept ``channels_last``:
    images arrive as (H, W, C) pixels, so the input is channels_last already, and oneDNN's channels_last
    convs ran the merged 16-channel nets 1.2-1.6x faster than NCHW with bit-identical outputs
    (docs/benchmarks.md); ``channels_last=False`` is the plain NCHW model, for comparison.
    """
    path = model_path(name_or_path)
    precision = "fp16" if half else precision
    engine = choose_engine(backend, path, device, None if precision == "auto" else precision, workload_mpix)
    if precision == "auto":
        precision = None if is_model_file(path) else auto_precision(engine)
    request = LoadRequest(source=name_or_path, path=path, precision=precision, device=device, threads=threads,
                          bgr=bgr, channels_last=channels_last)
    return engine.load(request)
