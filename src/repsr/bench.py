"""Throughput of an SR network on every installed engine and precision, against its training graph and bicubic.

Why ratios, not absolute numbers: machines (and their other users) differ, so every row is
measured in one run beside large matmuls in each precision the rows use -- fp32, bf16 where the CPU
has it natively, INT8 (``torch._int_mm``, VNNI/AMX where present): the practical peak of this machine
for that arithmetic -- and beside bicubic interpolation, the thing these nets want to replace. A row's
"% peak" is its achieved conv rate over the peak of its own precision, so a bf16 row is not flattered
by an fp32 yardstick. Conv FLOPs are counted
analytically (``2 * MACs``, each conv's MACs = output elements x in_channels/groups x k x k), so
"achieved GFLOP/s" is real arithmetic per second, not a vendor figure. On CUDA the NTIRE 2023
protocol applies: fp16, channels_last, 50 warm-up runs then the mean of 244 timed with CUDA events.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repsr.errors import UserError
from repsr.global_state import preserved
from repsr.inference import ENGINES, Upscaler, as_upscaler, load_runner
from repsr.inference.engines import readers
from repsr.models import FAMILIES, build_model, create_model, parse_preset
from repsr.reparam.base import RepBlock
from repsr.reparam.convert import reparameterize

DEFAULT_SIZES = "320x180x4,1280x720x3"
NTIRE_WARMUP, NTIRE_REPS = 50, 244
EAGER_REFERENCE = "merged fp32 NCHW"  # the row "x eager" divides by (the torch_eager engine's first row)


@dataclass
class BenchRow:
    """One measured configuration at one input size, with its ratios to the references measured beside it."""

    size: str
    name: str
    threads: int
    ms: float
    mpix_per_s: float  # output megapixels per second
    gflop: float | None = None  # conv GFLOP per frame (2 * MACs)
    gflop_per_s: float | None = None
    pct_matmul: float | None = None  # achieved GFLOP/s as % of the matmul rate of the row's precision
    precision: str = "fp32"  # the arithmetic the row runs (from its name): fp32, bf16, fp16, int8
    x_bicubic: float | None = None  # time relative to OpenCV's uint8 bicubic
    setup_s: float | None = None  # one-off cost before the first frame (torch.compile's compile)
    x_eager: float | None = None  # network rows: speed-up over the merged net in eager NCHW (its time / this time)
    model: str = ""  # the --model the row runs ("" for bicubic); set when one run compares several models


@dataclass
class BenchResult:
    """What ``repsr bench`` measured: every row of every size and thread count, and the matmul peaks beside them.

    ``repsr bench --json`` prints :func:`dataclasses.asdict` of it; the thread counts are the keys of both
    peak tables.
    """

    model: str
    device: str
    warmup: int
    reps: int
    cpu: str
    matmul_gflops: dict[int, float] = field(default_factory=dict)  # fp32 (fp16 on CUDA) rate per thread count
    peak_gflops: dict[int, dict[str, float]] = field(default_factory=dict)  # per thread count, per precision
    rows: list[BenchRow] = field(default_factory=list)


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    """``"320x180x4,1280x720x3"`` -> ``[(320, 180, 4), (1280, 720, 3)]`` (width, height, scale)."""
    sizes: list[tuple[int, int, int]] = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+)\s*", item)
        if not match:
            raise UserError(f"--sizes: '{item}' is not WIDTHxHEIGHTxSCALE (e.g. 320x180x4)")
        if min(int(g) for g in match.groups()) < 1:
            raise UserError(f"--sizes: '{item}' has a zero width, height or scale (each must be >= 1)")
        width, height, scale = (int(g) for g in match.groups())
        sizes.append((width, height, scale))
    return sizes


def model_factory(spec: str) -> Callable[[int], nn.Module | Upscaler]:
    """A function scale -> model (eval mode) for ``arch:MxCy``, a bare arch, or a name/path.

    Presets and arch names build randomly initialised nets (speed does not depend on weights);
    a shipped name or file has a fixed scale, and other scales are refused. A model file (``.onnx``
    fp32 or INT8, OpenVINO ``.xml``) is loaded as the same runner ``repsr eval`` uses.
    """
    arch, _, preset = spec.partition(":")
    if arch in FAMILIES and FAMILIES[arch].trainable:
        blocks, channels = parse_preset(preset) if preset else (4, None)
        return lambda s: create_model(arch, scale=s, blocks=blocks, channels=channels).eval()
    model = load_runner(spec)
    own_scale = as_upscaler(model).scale

    def fixed(scale: int) -> nn.Module | Upscaler:
        if own_scale != scale:
            raise UserError(f"{spec} is a x{own_scale} model; size asks for x{scale}")
        return model
    return fixed


def conv_gflop(model: nn.Module, x: torch.Tensor) -> float:
    """GFLOP (2 * multiply-adds) of every Conv2d in one forward pass on ``x``."""
    macs = [0]

    def hook(module: nn.Conv2d, _inp: object, out: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1]
        macs[0] += out.numel() * (module.in_channels // module.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return 2 * macs[0] / 1e9


def time_round_robin(fns: list[Callable[[], object]], warmup: int, reps: int, device: torch.device) -> list[float]:
    """Median milliseconds per call of each function, measured interleaved: one call of each per round.

    Why interleaved: on a shared machine the load changes during a run; timing the candidates one
    after another would charge a busy minute to whichever ran then. Round-robin spreads it over all,
    and the median drops the rounds a burst hit.
    """
    times: list[list[float]] = [[] for _ in fns]
    with torch.no_grad():
        for _ in range(warmup):
            for fn in fns:
                fn()
        for _ in range(reps):
            for fn, spent in zip(fns, times, strict=True):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                spent.append((time.perf_counter() - t0) * 1000)
    return [float(np.median(spent)) for spent in times]


def time_ms(fn: Callable[[], object], warmup: int, reps: int, device: torch.device) -> float:
    """Mean milliseconds per call: CUDA events on a GPU, ``perf_counter`` on the CPU."""
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]  # unannotated in torch
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]  # unannotated in torch
            torch.cuda.synchronize()
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            torch.cuda.synchronize()
            return float(start.elapsed_time(end)) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) * 1000 / reps


def matmul_gflops(device: torch.device, warmup: int, reps: int, n: int = 2048) -> float:
    """GFLOP/s of an ``n x n`` fp32 (fp16 on CUDA) matmul: the machine's practical FLOP rate."""
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    ms = time_ms(lambda: a @ b, max(1, warmup), max(2, reps), device)
    return 2 * n**3 / (ms / 1000) / 1e9


def peak_rates(device: torch.device, warmup: int, reps: int, n: int = 2048) -> dict[str, float]:
    """G(FL)OP/s of ``n x n`` matmuls per precision this machine runs natively: fp32 always (fp16 on CUDA), bf16
    where the CPU has AVX512-BF16/AMX, int8 where ``torch._int_mm`` runs (int32 sums; VNNI/AMX when present)."""
    from repsr.cpu import has_native_bf16

    rates = {"fp16" if device.type == "cuda" else "fp32": matmul_gflops(device, warmup, reps, n)}
    if device.type == "cpu" and has_native_bf16():
        a, b = (torch.randn(n, n, dtype=torch.bfloat16) for _ in range(2))
        rates["bf16"] = 2 * n**3 / (time_ms(lambda: a @ b, max(1, warmup), max(2, reps), device) / 1000) / 1e9
    if device.type == "cpu":
        a, b = (torch.randint(-128, 128, (n, n), dtype=torch.int8) for _ in range(2))
        try:
            ms = time_ms(lambda: torch._int_mm(a, b), max(1, warmup), max(2, reps), device)
            rates["int8"] = 2 * n**3 / (ms / 1000) / 1e9
        except RuntimeError:  # a build without CPU int8 matmul: INT8 rows get no share
            pass
    return rates


def precision_of(row_name: str) -> str:
    """The arithmetic a row runs, from its name ("openvino bf16", "onnxruntime INT8", "merged fp16 ...")."""
    lowered = row_name.lower()
    return next((p for p in ("int8", "bf16", "fp16") if p in lowered), "fp32")


def _has_training_blocks(model: nn.Module) -> bool:
    return any(isinstance(m, (RepBlock, nn.modules.batchnorm._BatchNorm)) for m in model.modules())


class Candidate(NamedTuple):
    """One timed configuration: its row name, one call, conv GFLOP per call, one-off setup seconds."""

    name: str
    fn: Callable[[], object]
    gflop: float | None
    setup_s: float | None = None


def file_candidates(runner: Upscaler, x: torch.Tensor, threads: int) -> list[Candidate]:
    """One row per installed engine that reads the model file given as ``--model``; FLOPs from its repsr config."""
    config = getattr(runner, "config", None)
    gflop = conv_gflop(build_model(config).eval(), x.cpu()) if config is not None else None
    path = runner.path  # type: ignore[attr-defined]  # every file engine's upscaler says its file
    return [Candidate(row.name, row.fn, gflop, row.setup_s) for engine in readers(path) if engine.installed()
            and engine.bench_file is not None for row in engine.bench_file(path, x, threads, runner.bgr)]


def network_candidates(model: nn.Module, x: torch.Tensor, device: torch.device, threads: int,
                       onnx: bool = True, with_compile: bool = True) -> list[Candidate]:
    """The network rows: training graph (if any), then every installed engine's rows for the merged net.

    ``onnx=False`` skips the engines that export first (onnxruntime, OpenVINO: seconds of export and
    quantization); on CUDA only the PyTorch engines run.
    """
    merged = reparameterize(model).eval()
    gflop = conv_gflop(merged.cpu().float(), x.cpu().float())
    rows: list[Candidate] = []
    if _has_training_blocks(model):
        train = model.eval().to(device)
        rows.append(Candidate("training graph fp32", lambda: train(x), conv_gflop(model.cpu(), x.cpu())))
        train.to(device)
    for engine in ENGINES.values():
        skip = (engine.name == "compile" and not with_compile) or (engine.package is not None and not onnx)
        if skip or engine.bench is None or not engine.installed() or device.type not in engine.devices:
            continue
        timed = engine.bench(reparameterize(model).eval().to(device if engine.package is None else "cpu"),
                             x if engine.package is None else x.cpu(), threads)
        rows += [Candidate(t.name, t.fn, gflop, t.setup_s) for t in timed]
    return rows


def bicubic_candidates(x: torch.Tensor, scale: int, device: torch.device) -> list[Candidate]:
    """Bicubic rows: torch (fp32, fp16 on CUDA) and on the CPU OpenCV INTER_CUBIC on uint8 and float."""
    rows = [Candidate("bicubic torch fp32", lambda: F.interpolate(x, scale_factor=scale, mode="bicubic"), None)]
    if device.type == "cuda":
        xh = x.half()
        rows.append(Candidate("bicubic torch fp16", lambda: F.interpolate(xh, scale_factor=scale, mode="bicubic"),
                              None))
        return rows
    img = np.ascontiguousarray(x[0].permute(1, 2, 0).cpu().numpy())
    img8 = (img * 255).astype(np.uint8)
    size = (img.shape[1] * scale, img.shape[0] * scale)
    rows.append(Candidate("bicubic OpenCV uint8", lambda: cv2.resize(img8, size, interpolation=cv2.INTER_CUBIC), None))
    rows.append(Candidate("bicubic OpenCV fp32", lambda: cv2.resize(img, size, interpolation=cv2.INTER_CUBIC), None))
    return rows


def bench_size(factories: dict[str, Callable[[int], nn.Module | Upscaler]], size: tuple[int, int, int],
               device: torch.device, threads: int, warmup: int, reps: int, peaks: dict[str, float],
               onnx: bool = True, with_compile: bool = True) -> list[BenchRow]:
    """Time every candidate of every model at one (width, height, scale), all interleaved in one round robin,
    and fill in the derived columns (x eager against each model's own eager row)."""
    w, h, scale = size
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    label = f"{w}x{h}x{scale}"
    candidates: list[tuple[str, Candidate]] = []
    for spec, factory in factories.items():
        model = factory(scale)
        if not isinstance(model, nn.Module):
            if device.type != "cpu":
                raise UserError("a model file (.onnx, .xml) is benchmarked on the CPU; use --device cpu")
            network = file_candidates(model, x, threads)
        else:
            network = network_candidates(model, x, device, threads, onnx, with_compile)
        candidates += [(spec if len(factories) > 1 else "", c) for c in network]
    candidates += [("", c) for c in bicubic_candidates(x, scale, device)]
    rows = []
    times = time_round_robin([c.fn for _, c in candidates], warmup, reps, device)
    for (spec, (name, _, gflop, setup)), ms in zip(candidates, times, strict=True):
        rate = gflop / (ms / 1000) if gflop is not None else None
        precision = precision_of(name)
        peak = peaks.get(precision)
        rows.append(BenchRow(label, name, threads, ms, w * h * scale * scale / (ms / 1000) / 1e6, gflop, rate,
                             None if rate is None or peak is None else 100 * rate / peak, precision, setup_s=setup,
                             model=spec))
    bicubic = next((r.ms for r in rows if r.name in ("bicubic OpenCV uint8", "bicubic torch fp16")), None)
    eager_of = {r.model: r.ms for r in rows if r.name == EAGER_REFERENCE}
    for row in rows:
        eager = eager_of.get(row.model)
        row.x_bicubic = None if bicubic is None else row.ms / bicubic
        row.x_eager = None if eager is None or row.gflop is None else eager / row.ms
    return rows


def run_bench(model: str | Sequence[str] = "repsr:M4C16", sizes: str = DEFAULT_SIZES, threads: list[int] | None = None,
              device: str = "cpu", warmup: int | None = None, reps: int | None = None,
              onnx: bool = True, with_compile: bool = True) -> BenchResult:
    """All rows for every size and thread count, plus the matmul peaks of each thread count.

    ``model`` may name several models: their rows are timed in the same round robin (each row says its model),
    so their ratios hold on a busy machine too. Each thread count is set for torch and OpenCV while it is
    measured; both are the caller's again on return.
    """
    from repsr.cpu import describe
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    cuda = dev.type == "cuda"
    warmup = (NTIRE_WARMUP if cuda else 3) if warmup is None else warmup
    reps = (NTIRE_REPS if cuda else 10) if reps is None else reps
    models = [model] if isinstance(model, str) else list(dict.fromkeys(model))
    factories, parsed = {m: model_factory(m) for m in models}, parse_sizes(sizes)
    result = BenchResult(", ".join(models), str(dev), warmup, reps, describe())
    with preserved() as caller:
        for t in threads or [caller.threads]:
            torch.set_num_threads(t)
            cv2.setNumThreads(t)
            peaks = peak_rates(dev, warmup, reps)
            result.matmul_gflops[t] = next(iter(peaks.values()))  # fp32 (fp16 on CUDA): earlier releases' key
            result.peak_gflops[t] = peaks
            for size in parsed:
                result.rows += bench_size(factories, size, dev, t, warmup, reps, peaks, onnx, with_compile)
    return result
