"""``torch.compile`` as an :class:`~repsr.inference.upscaler.Upscaler`, and when it pays.

Why: a merged 16-channel net is a stack of small 3x3 convs with a PReLU, a pixel shuffle and an add
between them, each a full sweep over the activation map in eager PyTorch. Inductor fuses those
elementwise passes into the conv epilogues: 1.4x (320x180 -> x4) to 2.2x (1280x720 -> x2) faster on
one CPU thread (``repsr bench``, docs/benchmarks.md). Compiling costs seconds (less once inductor's
on-disk cache is warm), so it pays for a folder, a video or a large image, not for one small image:
:func:`choose_backend` makes that call from the run's workload.

Exactness: inductor may sum in another order than oneDNN (float rounding, ~1e-6), so a uint8 output
can differ from eager by one level where a value sits on a rounding boundary -- the same bound as tiling.
A compile that fails (no C++ compiler, an unsupported op) falls back to eager with one warning.
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor

from repsr.errors import UserError
from repsr.inference.upscaler import TorchUpscaler, super_resolve

BACKENDS = ("auto", "eager", "compile", "onnx")
ALIASES = {"torch": "eager", "onnxruntime": "onnx"}  # the names of earlier releases
# Compile when the run has at least this many input megapixels: ~eight 720p frames, where the
# compile (a few seconds on one thread, docs/benchmarks.md) is repaid by the faster network.
AUTO_COMPILE_MPIX = 7.0
COMPILE_ERRORS = (torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InductorError)


def choose_backend(backend: str | None, onnx_file: bool, workload_mpix: float, half: bool = False) -> str:
    """The concrete backend (``eager``, ``compile`` or ``onnx``) for ``backend`` (None = ``auto``).

    ``auto``: an ``.onnx`` file runs on onnxruntime; fp16 (CUDA) stays eager (its inf/NaN fallback
    lives there); otherwise compile when ``workload_mpix`` (input pixels of the whole run, in MP)
    reaches :data:`AUTO_COMPILE_MPIX`, else eager.
    """
    name = ALIASES.get(backend or "auto", backend or "auto")
    if name not in BACKENDS:
        raise UserError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if name != "auto":
        return name
    if onnx_file:
        return "onnx"
    return "compile" if not half and workload_mpix >= AUTO_COMPILE_MPIX else "eager"


class CompiledUpscaler:
    """A :class:`TorchUpscaler`'s model run through ``torch.compile``; same facts, same outputs (to 1 level).

    ``dynamic=None`` is torch's automatic dynamic shapes: the first input size is compiled static
    (fastest), a second size recompiles once with symbolic sizes, and no later size recompiles --
    a folder of differently sized images costs at most two compiles.
    """

    def __init__(self, eager: TorchUpscaler, dynamic: bool | None = None) -> None:
        self.eager = eager
        self.scale, self.receptive_radius = eager.scale, eager.receptive_radius
        self.tile_alignment, self.bgr, self.config = eager.tile_alignment, eager.bgr, eager.config
        self.device, self.half = eager.device, eager.half
        self._compiled: torch.nn.Module | None = torch.compile(eager.model, dynamic=dynamic)

    @property
    def active(self) -> bool:
        """False once a compile failed and the eager model runs instead."""
        return self._compiled is not None

    def __call__(self, lr: Tensor) -> Tensor:
        if self._compiled is not None:
            try:
                return super_resolve(self._compiled, lr).cpu()
            except COMPILE_ERRORS as exc:
                why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                print(f"warning: torch.compile failed ({why}); running eager", file=sys.stderr)
                self._compiled = None
        return self.eager(lr)
