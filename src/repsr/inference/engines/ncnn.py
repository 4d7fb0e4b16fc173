"""ncnn: the runtime of Upscayl and the realesrgan-ncnn-vulkan family, and the ``.param`` + ``.bin`` pair they load.

What it runs: ``.param`` files (with the ``.bin`` beside them; repsr's own from ``repsr merge -o x.param`` or a
foreign SRVGGNetCompact-style conversion) and any repsr weights or shipped name, converted in-process by
:func:`repsr.export.ncnn.ncnn_model` (milliseconds: no cache needed). The files are RGB, so ``bgr`` is False
unless ``--bgr`` marks a foreign file as BGR. Facts for tiling come from the graph when repsr wrote it
(:func:`repsr.export.ncnn.config_of`); a foreign file gets its scale from a probe run and generous context.

Devices: the CPU through the ncnn wheel; ``--device vulkan`` (``auto`` picks it when ncnn sees a Vulkan GPU)
runs ncnn's Vulkan backend with the options realesrgan-ncnn-vulkan sets.

Precisions: ``fp32`` (the default; within ~1e-5 of eager PyTorch) and ``fp16``, which is what the Vulkan
clients run: fp16 *storage* of weights and of every blob, fp32 arithmetic (realesrgan-ncnn-vulkan sets
``use_fp16_storage``, not ``use_fp16_arithmetic``). ncnn's x86 CPU kernels ignore those options (turned on,
they left a conv + PReLU's output bit-identical here), so on the CPU the engine reproduces the storage itself:
weights rounded to fp16, and each layer's output extracted, rounded to fp16 and fed back before the next
layer reads it. That costs speed and buys the PSNR a Vulkan client gets, on any machine (docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from repsr.config import ModelConfig
from repsr.errors import UserError
from repsr.export.ncnn import (
    INPUT,
    OUTPUT,
    Layer,
    config_of,
    export_ncnn,
    ncnn_model,
    parse_param,
    read_weights,
    rgb_config,
    rounded_to_fp16,
)
from repsr.inference.engines.onnxruntime import file_facts
from repsr.inference.engines.spec import ArrayRunner, Engine, LoadRequest, Timed
from repsr.inference.upscaler import Upscaler
from repsr.models import model_config

PASS_THROUGH = {"Input", "Split"}  # layers whose outputs are their inputs: nothing to round


@contextlib.contextmanager
def stderr_captured() -> Iterator[list[str]]:
    """Collect what C code writes to file descriptor 2 (ncnn's loader messages, the Vulkan probe's dlopen errors)
    so a failure becomes one line; the lines are in the yielded list afterwards."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += [line.strip() for line in sink.read().decode(errors="replace").splitlines() if line.strip()]


@cache
def vulkan_devices() -> int:
    """Vulkan GPUs ncnn can use here (0 without a driver; the probe's complaints are kept off the terminal)."""
    import ncnn

    with stderr_captured():
        return int(ncnn.get_gpu_count())


def _device(requested: object) -> str:
    name = str(requested or "cpu")
    if name == "auto":
        return "vulkan" if vulkan_devices() else "cpu"
    if name.startswith("vulkan") and not vulkan_devices():
        raise UserError("--device vulkan: ncnn finds no Vulkan GPU here (no driver or no device); use --device cpu")
    return name


def _fp16(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to fp16, as C-contiguous fp32 (ncnn reads a Mat's buffer as dense rows)."""
    return np.ascontiguousarray(values, dtype=np.float16).astype(np.float32)


class NcnnUpscaler(ArrayRunner):
    """An ncnn ``.param`` + ``.bin`` pair (its ``layers`` parsed) as an :class:`~repsr.inference.upscaler.Upscaler`.

    fp16 on the CPU loads the weights rounded to fp16 and rounds every blob between layers (the module's
    docstring says why); ``path`` is the file the user named, for messages.
    """

    def __init__(self, layers: list[Layer], param: Path, weights: Path, config: ModelConfig | None,
                 precision: str = "fp32", threads: int = 0, bgr: bool | None = None, device: str = "cpu",
                 path: Path | None = None) -> None:
        import ncnn

        self.layers, self.config, self.precision, self.path, self.device = layers, config, precision, path, device
        vulkan = device.startswith("vulkan")
        self.emulate_fp16 = precision == "fp16" and not vulkan
        net = ncnn.Net()
        net.opt.use_vulkan_compute = vulkan
        if vulkan:
            net.set_vulkan_device(int(device.partition(":")[2] or 0))
        # ncnn defaults to fp16/bf16 storage where a CPU has it: fp32 means fp32 everywhere. On Vulkan, fp16 is
        # realesrgan-ncnn-vulkan's choice: fp16 storage and packing, fp32 arithmetic.
        net.opt.use_fp16_storage = net.opt.use_fp16_packed = precision == "fp16" and vulkan
        net.opt.use_fp16_arithmetic = net.opt.use_bf16_storage = False
        if threads:
            net.opt.num_threads = threads
        with tempfile.TemporaryDirectory() as tmp, stderr_captured() as said:
            if self.emulate_fp16:
                weights = _rounded_weights(layers, weights, Path(tmp), path or param)
            failed = net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0
        if failed or INPUT not in net.input_names() or OUTPUT not in net.output_names():
            why = said[-1] if said else f"it needs the blobs '{INPUT}' and '{OUTPUT}'"
            raise UserError(f"{path or param}: ncnn cannot load it ({why[:200]})")
        self.net = net
        self.bgr = bool(bgr)  # ncnn files are RGB (repsr folds a BGR net's order into its weights)
        self.scale = config.scale if config else self.probe_scale()
        self.receptive_radius, self.tile_alignment = file_facts(config)

    @property
    def engine(self) -> str:
        where = " vulkan" if self.device.startswith("vulkan") else ""
        return f"ncnn{where} {self.precision}{' storage (emulated)' if self.emulate_fp16 else ''}"

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        """One (3, h, w) image. Every Mat given to ncnn is a clone: ncnn may work in place on an input blob, and
        a Mat that wraps numpy memory has no reference count for it to check."""
        import ncnn

        extractor = self.net.create_extractor()
        feed = _fp16(x) if self.emulate_fp16 else np.ascontiguousarray(x, dtype=np.float32)
        extractor.input(INPUT, ncnn.Mat(feed).clone())
        if self.emulate_fp16:
            for layer in self.layers:
                if layer.kind in PASS_THROUGH:
                    continue
                for top in layer.tops:
                    values = _fp16(self._extract(extractor, top))
                    extractor.input(top, ncnn.Mat(values).clone())
        return self._extract(extractor, OUTPUT)

    def _extract(self, extractor: Any, blob: str) -> np.ndarray:
        code, mat = extractor.extract(blob)
        if code != 0:
            raise UserError(f"{self.path or 'ncnn model'}: ncnn failed computing '{blob}' (code {code})")
        return np.array(mat)

    def run(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 -> (N, 3, s*h, s*w), unclamped, in the file's channel order."""
        return np.stack([self._run_one(image) for image in x])



def _rounded_weights(layers: list[Layer], weights: Path, folder: Path, source: Path) -> Path:
    """A copy of ``weights`` in ``folder`` with every weight rounded to fp16, as a client with fp16 storage has them."""
    rounded = rounded_to_fp16(layers, weights.read_bytes(), str(weights))
    if rounded is None:
        raise UserError(f"{source}: --precision fp16 rounds Convolution and PReLU weights, and this file has other "
                        "weighted layers")
    (folder / "fp16.bin").write_bytes(rounded)
    return folder / "fp16.bin"


def open_file(path: Path, precision: str = "fp32", threads: int = 0, bgr: bool | None = None,
              device: str = "cpu") -> NcnnUpscaler:
    """A ``.param`` file and the ``.bin`` beside it, checked before ncnn sees them (ncnn reports on stderr)."""
    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise UserError(f"{path}: its weights {weights.name} are missing (an ncnn model is the .param and the .bin "
                        "beside it)")
    try:
        layers = parse_param(path.read_text(errors="replace"), str(path))
        read_weights(layers, weights.read_bytes(), str(weights))  # sizes checked where repsr can size the layers
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return NcnnUpscaler(layers, path, weights, config_of(layers), precision, threads, bgr, device, path)


def convert(model: nn.Module, precision: str = "fp32", threads: int = 0, device: str = "cpu",
            path: Path | None = None) -> NcnnUpscaler:
    """A merged PyTorch net as an ncnn net, through its export written to a temporary folder (ncnn copies the
    weights while loading them). The config is the module's, RGB: the export folds a BGR order in."""
    text, data = ncnn_model(model, precision)
    with tempfile.TemporaryDirectory() as tmp:
        param, weights = Path(tmp) / "model.param", Path(tmp) / "model.bin"
        param.write_text(text)
        weights.write_bytes(data)
        return NcnnUpscaler(parse_param(text, str(param)), param, weights, rgb_config(model_config(model)),
                            precision, threads, device=device, path=path)


def _load(request: LoadRequest) -> Upscaler:
    precision, device = request.precision or "fp32", _device(request.device)
    if request.path.suffix.lower() == ".param":
        return open_file(request.path, precision, request.threads, request.bgr, device)
    return convert(request.module(), precision, request.threads, device, request.path)


def _bench(model: nn.Module, x: Tensor, threads: int) -> list[Timed]:
    """fp32 on the CPU (the emulated fp16 measures accuracy, not speed)."""
    runner, feed = convert(model, threads=threads), x.cpu().numpy()
    return [Timed(runner.engine, lambda: runner.run(feed))]


def _bench_file(path: Path, x: Tensor, threads: int, bgr: bool | None) -> list[Timed]:
    runner, feed = open_file(path, threads=threads, bgr=bgr), x.cpu().numpy()
    return [Timed(runner.engine, lambda: runner.run(feed))]


ENGINE = Engine(name="ncnn", runtime="ncnn", loader=_load, reads=(".param",), writes=(".param",),
                exporter=export_ncnn, precisions=("fp32", "fp16"), export_precisions=("fp32", "fp16"),
                devices=("cpu", "vulkan"), package="ncnn", extra="ncnn",
                emulated=("fp16",), bench=_bench, bench_file=_bench_file)
