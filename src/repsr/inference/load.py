"""The one loading path for a model to *run*: a shipped name, weights file or model file, on any engine.

:mod:`repsr.hub` resolves names and weights files to PyTorch modules (networks and data layer); the
engines of :mod:`repsr.inference.engines` run them or the files other runtimes read (``.onnx``, ``.xml``).
:func:`load_runner` gives what a command scores or inspects as loaded: the PyTorch module itself
(``repsr bench`` counts its convs, ``repsr quantize`` exports it) or, for a model file, its engine's
upscaler. :func:`load_upscaler` gives a bound :class:`~repsr.inference.upscaler.Upscaler` on the engine
``--backend`` names (``auto``: :func:`~repsr.inference.engines.choose_engine`). A training graph is merged
on load (equal output, faster); a shipped file, already merged, is not merged again.
"""

from __future__ import annotations

import torch
from torch import nn

from repsr.hub import model_path, resolve_model
from repsr.inference.engines import LoadRequest, auto_precision, choose_engine, is_model_file, owner_of
from repsr.inference.upscaler import Upscaler


def load_runner(name_or_path: str, device: str | torch.device = "cpu", bgr: bool | None = None,
                threads: int = 0) -> nn.Module | Upscaler:
    """A PyTorch module (eval mode, on ``device``) for weights files and shipped names, or for a model file
    (``.onnx``, ``.xml``) the upscaler of the engine of its format (onnxruntime, OpenVINO) on the CPU.

    ``threads`` is that engine's intra-op thread count (0: its default).
    """
    path = model_path(name_or_path)
    if not is_model_file(path):
        return resolve_model(name_or_path, device=device, bgr=bgr)
    return load_upscaler(name_or_path, owner_of(path).name, str(device), bgr=bgr, threads=threads)


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
