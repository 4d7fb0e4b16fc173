"""ExecuTorch: the mobile runtime repsr runs as well as writes, and the ``.pte`` files it reads.

What it runs: ``.pte`` programs that ``repsr merge -o x.pte`` wrote (their ``repsr_metadata`` method holds
the config, size bound and precision), or any weights file or shipped name, exported in-process (~10 s;
:func:`repsr.export.executorch.executorch_program`). The runtime is ExecuTorch's Python binding with the
XNNPACK delegate, the CPU library the Android and iOS apps link, on this machine's x86 CPU.

Sizes: a file takes inputs up to its bound per side (even sides for Bicubic++) and ExecuTorch does not check
it, so the upscaler pads odd sides of Bicubic++ by replication (as the module does) and tiles larger
images with the model's receptive radius as context, which leaves the result equal to the untiled one.

Threads: ExecuTorch's thread pool is one per process, so ``threads`` resets it for the whole process
(0 keeps its default, one thread per core).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repsr.config import ModelConfig
from repsr.cpu import cpu_flags, is_x86
from repsr.errors import UserError
from repsr.export.executorch import MAX_SIDE, METADATA, PRECISIONS, executorch_program, export_executorch
from repsr.export.quiet import quiet
from repsr.inference.engines.ncnn import stderr_captured
from repsr.inference.engines.onnxruntime import file_facts
from repsr.inference.engines.spec import Engine, LoadRequest, Timed
from repsr.inference.tiles import upscale_tiled
from repsr.inference.upscaler import Upscaler

FP16_FLAGS = ("avx512_fp16", "asimdhp", "fphp")  # x86 AVX512-FP16; ARMv8.2 half-precision arithmetic


def native_precisions() -> frozenset[str]:
    """fp16 where the CPU has fp16 arithmetic (XNNPACK's fp16 kernels need it to be faster than fp32)."""
    fp16 = any(flag in cpu_flags() for flag in FP16_FLAGS) or (not is_x86() and "fp16" in cpu_flags())
    return frozenset({"fp32", "fp16"} if fp16 else {"fp32"})


def _set_threads(threads: int) -> None:
    if threads > 0:
        with quiet():
            from executorch.extension.pybindings import portable_lib
        with stderr_captured():
            portable_lib._unsafe_reset_threadpool(threads)  # the pool is process-wide; no other setter exists


class ExecutorchUpscaler:
    """A ``.pte`` program (its bytes) as an :class:`~repsr.inference.upscaler.Upscaler`.

    Every file repsr writes is RGB, so ``bgr`` is False; ``path`` is what the user named, for messages.
    """

    def __init__(self, data: bytes, source: Path, threads: int = 0) -> None:
        with quiet():
            from executorch.runtime import Runtime
        _set_threads(threads)
        # ExecuTorch logs through Python's sys.stderr and C's fd 2: both kept for a one-line error
        with stderr_captured() as said, contextlib.redirect_stderr(io.StringIO()) as logged:
            try:
                # the program owns the memory its methods run in: keep it as long as the method
                self.program = program = Runtime.get().load_program(data)
                names = program.method_names
                meta = program.load_method(METADATA).execute([])[0] if METADATA in names else None
                self.method = program.load_method("forward")
            except (RuntimeError, ValueError) as exc:
                said += [line for line in logged.getvalue().splitlines() if line.strip()]
                why = "; ".join([*str(exc).splitlines()[:1], *said[-1:]])
                raise UserError(f"{source}: ExecuTorch cannot load it ({why[:200]})") from None
        if meta is None:
            raise UserError(f"{source}: an ExecuTorch program without repsr's metadata (repsr runs the .pte files "
                            "that `repsr merge -o x.pte` writes)")
        info = json.loads(bytes(meta.tolist()).decode())
        self.config = ModelConfig.from_json(info["config"], str(source))
        self.max_side, self.precision, self.path = int(info["max_side"]), str(info["precision"]), source
        self.align = int(info["align"])
        self.scale, self.bgr = self.config.scale, False
        self.receptive_radius, self.tile_alignment = file_facts(self.config)

    @property
    def engine(self) -> str:
        return f"ExecuTorch XNNPACK {self.precision}"

    def _run_one(self, x: Tensor) -> Tensor:
        """One (1, 3, h, w) image within the bound; odd sides padded to the alignment by replication."""
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.align, -w % self.align
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        try:
            y: Tensor = self.method.execute([x.contiguous()])[0]
        except RuntimeError as exc:
            raise UserError(f"{self.path}: ExecuTorch failed running it ({str(exc).splitlines()[0][:200]})") from None
        return y[..., : h * self.scale, : w * self.scale]

    def tile_size(self) -> int:
        """The largest tile whose context window (tile plus the radius on both sides, aligned) fits the bound."""
        pad = math.ceil(self.receptive_radius / self.tile_alignment) * self.tile_alignment
        return (self.max_side - 2 * pad) // self.tile_alignment * self.tile_alignment

    def __call__(self, lr: Tensor) -> Tensor:
        x = lr.detach().float().cpu()
        if max(x.shape[-2:]) > self.max_side:
            return upscale_tiled(self, lr, tile=self.tile_size())
        y = torch.cat([self._run_one(image[None]) for image in x])
        return y.clamp_(0.0, 1.0).to(lr.dtype)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def check_file_precision(runner: ExecutorchUpscaler, precision: str | None) -> None:
    """A .pte computes in the precision it was written with: say so rather than run another one."""
    if precision is not None and precision != runner.precision:
        raise UserError(f"{runner.path} is an {runner.precision} ExecuTorch file: drop --precision {precision} (or "
                        f"write an {precision} one: repsr merge MODEL -o x.pte --precision {precision})")


def _load(request: LoadRequest) -> Upscaler:
    if request.path.suffix.lower() == ".pte":
        runner = ExecutorchUpscaler(_read(request.path), request.path, request.threads)
        check_file_precision(runner, request.precision)
        return runner
    data, _ = executorch_program(request.module(), request.precision or "fp32")
    return ExecutorchUpscaler(data, request.path, request.threads)


def _timed(runner: ExecutorchUpscaler, x: Tensor) -> Timed:
    feed = x[:1].contiguous()
    return Timed(runner.engine, lambda: runner.method.execute([feed]))


def _bench(model: nn.Module, x: Tensor, threads: int) -> list[Timed]:
    """fp32, and fp16 where this CPU has fp16 arithmetic (elsewhere its speed would say nothing of a phone's)."""
    if max(x.shape[-2:]) > MAX_SIDE:
        return []  # beyond a file's bound: the runner would tile, which is not the network's speed
    rows = [_timed(ExecutorchUpscaler(executorch_program(model, "fp32")[0], Path("bench"), threads), x)]
    if "fp16" in native_precisions():
        rows.append(_timed(ExecutorchUpscaler(executorch_program(model, "fp16")[0], Path("bench"), threads), x))
    return rows


def _bench_file(path: Path, x: Tensor, threads: int, bgr: bool | None) -> list[Timed]:
    runner = ExecutorchUpscaler(_read(path), path, threads)
    return [_timed(runner, x)] if max(x.shape[-2:]) <= runner.max_side else []



ENGINE = Engine(name="executorch", runtime="ExecuTorch", loader=_load, reads=(".pte",), writes=(".pte",),
                exporter=export_executorch, precisions=PRECISIONS, export_precisions=PRECISIONS,
                package="executorch", extra="executorch", native=native_precisions, bench=_bench,
                bench_file=_bench_file)
