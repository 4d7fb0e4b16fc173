"""What an engine declares: one :class:`Engine` record per runtime, and the request it loads from.

Why a record, not a class hierarchy: every place that used to know a runtime by name (``--backend``
choices, ``repsr bench`` rows, ``repsr eval``'s model kinds, ``repsr merge -o`` formats) now reads these
fields, so adding a runtime is one module that builds an :class:`Engine` plus one line in the registry
(:mod:`repsr.inference.engines`). The runtime's own package is imported inside its loader, never at
import time: a missing optional runtime costs nothing until it is asked for, and then a one-line error
names the pip extra that installs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from repsr.errors import UserError
from repsr.inference.upscaler import Upscaler
from repsr.reparam.base import Fusable
from repsr.reparam.convert import reparameterize
from repsr.weights import load_model

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
# What each precision needs from a CPU to run natively (OpenVINO's OPTIMIZATION_CAPABILITIES names).
CPU_NEEDS = {"bf16": "AVX512-BF16 or AMX", "fp16": "AVX512-FP16 or ARM fp16", "int8": "int8 dot products"}


def merged(model: nn.Module) -> nn.Module:
    """``model`` in its inference form: merged when it holds a training-time block, else itself."""
    needs = any(isinstance(m, Fusable) for m in model.modules())
    return reparameterize(model) if needs else model


@dataclass(frozen=True)
class LoadRequest:
    """Everything an engine's loader may need; each engine reads the fields that concern it.

    ``source`` is what the user typed (a shipped name or a path) and ``path`` the file behind it.
    ``precision`` None means "as the file is" (fp32 for float weights, int8 for an INT8 file).
    """

    source: str
    path: Path
    precision: str | None = None
    device: str | None = "cpu"
    threads: int = 0  # intra-op threads of the runtime (0: its default)
    bgr: bool | None = None
    channels_last: bool = True

    def module(self) -> nn.Module:
        """The PyTorch network in the weights file ``path``, merged (fp32, CPU, eval mode)."""
        return merged(load_model(self.path, bgr=self.bgr)).eval()


class ArrayRunner:
    """The :class:`~repsr.inference.upscaler.Upscaler` call of a runtime that takes float32 NCHW arrays.

    onnxruntime, OpenVINO and ncnn all run numpy arrays, not tensors: each defines :meth:`run` on the file's own
    channel order, and this base flips BGR weights' channels around it, clamps to [0, 1] and returns the input's
    dtype -- once, so every array engine treats colour and range alike.
    """

    bgr: bool

    def run(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 -> (N, 3, s*h, s*w), unclamped, in the file's channel order."""
        raise NotImplementedError

    def probe_scale(self) -> int:
        """The scale of a file that does not state it: one run on an 8x8 input."""
        return int(self.run(np.zeros((1, 3, 8, 8), np.float32)).shape[-1] // 8)

    def __call__(self, lr: Tensor) -> Tensor:
        x = lr.detach().float().cpu().numpy()
        if self.bgr:
            x = x[:, ::-1]
        y = self.run(np.ascontiguousarray(x))
        if self.bgr:
            y = y[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(y)).clamp_(0.0, 1.0).to(lr.dtype)


class Timed(NamedTuple):
    """One row an engine adds to ``repsr bench``: its name, one call, and one-off setup seconds."""

    name: str
    fn: Callable[[], object]
    setup_s: float | None = None


BenchRows = Callable[[nn.Module, torch.Tensor, int], list[Timed]]  # (merged net, input, threads)
BenchFile = Callable[[Path, torch.Tensor, int, "bool | None"], list[Timed]]  # (model file, input, threads, bgr)


@dataclass(frozen=True)
class Engine:
    """One runtime: its name, the files it runs and writes, precisions, devices, and how to load one."""

    name: str  # the ``--backend`` value
    runtime: str  # what the user reads in tables: "PyTorch eager", "OpenVINO", ...
    loader: Callable[[LoadRequest], Upscaler] | None  # None: repsr writes its files but cannot run them here
    reads: tuple[str, ...] = ()  # model file suffixes it runs as they are (beyond PyTorch weights)
    writes: tuple[str, ...] = ()  # ``repsr merge -o`` suffixes it exports
    exporter: Callable[..., list[str] | None] | None = None  # (merged net, path[, precision=]) -> notes for the user
    export_precisions: tuple[str, ...] = ("fp32",)  # weight precisions its files can store (``repsr merge``)
    precisions: tuple[str, ...] = ("fp32",)
    devices: tuple[str, ...] = ("cpu",)
    package: str | None = None  # import name of the runtime; None: always installed (torch)
    extra: str | None = None  # ``pip install 'repsr[extra]'`` installs it
    exact: bool = True  # fp32 output equal to eager PyTorch within one uint8 level
    native: Callable[[], frozenset[str]] = field(default=lambda: frozenset({"fp32"}))  # precisions native here
    emulated: tuple[str, ...] = ()  # precisions it reproduces where not native, for their PSNR (never for speed)
    bench: BenchRows | None = None  # its rows in ``repsr bench`` for a merged network on an input
    bench_file: BenchFile | None = None  # its row for a model file it reads (``repsr bench --model x.onnx``)
    runs_on: str = ""  # where the files run, for an engine without a loader (the error says it)

    def installed(self) -> bool:
        return self.package is None or importlib.util.find_spec(self.package) is not None

    def require(self) -> None:
        """A one-line error naming what to install, when the runtime is missing."""
        if not self.installed():
            how = f"pip install 'repsr[{self.extra}]'" if self.extra else f"pip install {self.package}"
            raise UserError(f"--backend {self.name} needs {self.runtime} ({self.package}), which is not "
                            f"installed: {how}")

    def check_precision(self, precision: str | None) -> None:
        """Refuse a precision this engine lacks, or one this machine cannot run natively."""
        if precision is None or precision == "fp32":
            return
        if precision not in self.precisions:
            raise UserError(f"--backend {self.name} runs {', '.join(self.precisions)}, not {precision}")
        if precision != "int8" and precision not in self.native() and precision not in self.emulated:
            need = CPU_NEEDS.get(precision, precision)
            raise UserError(f"--precision {precision}: this CPU has no native {precision} ({need} needed; "
                            f"emulated it is slower than fp32): use --precision fp32")

    def load(self, request: LoadRequest) -> Upscaler:
        if self.loader is None:
            made = f" (repsr merge MODEL -o name{self.writes[0]})" if self.writes else ""
            raise UserError(f"--backend {self.name}: repsr writes {self.runtime} files{made} but cannot run them; "
                            f"{self.runs_on}")
        self.require()
        self.check_precision(request.precision)
        device = str(request.device or "cpu")
        if device != "auto" and device.split(":")[0] not in self.devices:
            raise UserError(f"--backend {self.name} runs on {', '.join(self.devices)}, not {device}")
        return self.loader(request)

    def check_export(self, precision: str = "fp32") -> None:
        if precision not in self.export_precisions:
            stored = " or ".join(self.export_precisions)
            raise UserError(f"{self.runtime} files store {stored} weights, not {precision}")

    def export(self, model: nn.Module, path: Path, precision: str = "fp32") -> list[str]:
        """Write ``model`` to ``path``; returns what the user should know about the file (its exporter's notes)."""
        self.require()
        if self.exporter is None:
            raise UserError(f"{self.runtime} has no file format of its own")
        self.check_export(precision)
        notes = self.exporter(model, path) if precision == "fp32" else self.exporter(model, path, precision=precision)
        return list(notes or [])
