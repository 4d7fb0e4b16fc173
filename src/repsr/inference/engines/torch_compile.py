"""``torch.compile`` as an engine: a :class:`~repsr.inference.upscaler.TorchUpscaler` run through inductor.

Why: a merged 16-channel net is a stack of small 3x3 convs with a PReLU, a pixel shuffle and an add
between them, each a full sweep over the activation map in eager PyTorch. Inductor fuses those
elementwise passes into the conv epilogues: 1.4x (320x180 -> x4) to 2.2x (1280x720 -> x2) faster on
one CPU thread (``repsr bench``, docs/benchmarks.md). Compiling costs seconds (less once inductor's
on-disk cache is warm), so it pays for a folder, a video or a large image, not for one small image:
:func:`repsr.inference.engines.choose_engine` makes that call from the run's workload when OpenVINO
(faster still, docs/deploy.md) is not installed.

Exactness: inductor may sum in another order than oneDNN (float rounding, ~1e-6), so a uint8 output
can differ from eager by one level where a value sits on a rounding boundary -- the same bound as tiling.
A compile that fails (no C++ compiler, an unsupported op) falls back to eager with one warning.
"""

from __future__ import annotations

import sys
import time
from typing import cast

import torch
from torch import Tensor, nn

from repsr.inference.engines.spec import Engine, LoadRequest, Timed
from repsr.inference.upscaler import TorchUpscaler, Upscaler, resolve_device, super_resolve


def compile_errors() -> tuple[type[Exception], ...]:
    """What a failed compile raises; resolved on first use, as importing torch._dynamo costs ~1 s at startup."""
    import torch._dynamo.exc
    import torch._inductor.exc

    return torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InductorError


class CompiledUpscaler:
    """A :class:`TorchUpscaler`'s model run through ``torch.compile``; same facts, same outputs (to 1 level).

    ``dynamic=None`` is torch's automatic dynamic shapes: the first input size is compiled static
    (fastest), a second size recompiles once with symbolic sizes, and no later size recompiles --
    a folder of differently sized images costs at most two compiles.
    """

    compiles_per_shape = True  # a new batch size costs a recompile (seconds): callers keep batches full

    def __init__(self, eager: TorchUpscaler, dynamic: bool | None = None) -> None:
        self.eager = eager
        self.scale, self.receptive_radius = eager.scale, eager.receptive_radius
        self.tile_alignment, self.bgr, self.config = eager.tile_alignment, eager.bgr, eager.config
        self.device, self.half = eager.device, eager.half
        # an OptimizedModule (a Module); torch.compile's overloads type the result of any callable
        self._compiled = cast(torch.nn.Module | None, torch.compile(eager.model, dynamic=dynamic))

    @property
    def active(self) -> bool:
        """False once a compile failed and the eager model runs instead."""
        return self._compiled is not None

    @property
    def engine(self) -> str:
        return f"{self.eager.engine} compiled" if self.active else self.eager.engine

    def __call__(self, lr: Tensor) -> Tensor:
        if self._compiled is not None:
            try:
                return super_resolve(self._compiled, lr).cpu()
            except compile_errors() as exc:
                why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                print(f"warning: torch.compile failed ({why}); running eager", file=sys.stderr)
                self._compiled = None
        return self.eager(lr)


def _load(request: LoadRequest) -> Upscaler:
    eager = TorchUpscaler(request.module(), resolve_device(request.device), channels_last=request.channels_last)
    return CompiledUpscaler(eager)


def _bench(model: nn.Module, x: torch.Tensor, threads: int) -> list[Timed]:
    """The ``torch.compile`` row; its compile (the first call) is timed as the row's setup."""
    compiled = torch.compile(model.eval().to(x.device))
    start = time.perf_counter()
    with torch.no_grad():
        compiled(x)
    return [Timed("torch.compile fp32", lambda: compiled(x), time.perf_counter() - start)]


ENGINE = Engine(name="compile", runtime="torch.compile (inductor)", loader=_load, devices=("cpu", "cuda"),
                bench=_bench)
