"""OpenVINO: the fastest exact CPU engine measured here (docs/deploy.md), and the IR format ``repsr merge -o x.xml``.

Why OpenVINO for these nets: a merged repsr net is a plain 3x3 conv stack, and OpenVINO's CPU plugin
fuses PReLU, the pixel shuffle and the skip add into its conv kernels and picks blocked layouts for
16-channel maps; fp32 results equal PyTorch's within ~2e-6 (tests hold it to one uint8 level).

What it runs: PyTorch weights (converted in-process by ``openvino.convert_model`` through the same
size-independent wrapper as the ONNX export, cached on disk so the conversion is paid once per file),
``.onnx`` files (fp32 and ``repsr quantize``'s INT8 QDQ, which OpenVINO turns into integer kernels) and
OpenVINO IR (``.xml`` + ``.bin``; repsr stores the model config in the IR's ``rt_info``).

Precisions: ``fp32`` (the default, exact), ``bf16`` / ``fp16`` only where the CPU reports them as native
(``OPTIMIZATION_CAPABILITIES``; emulated bf16 is slower than fp32), ``int8`` via an INT8 file.

Shapes: the model is compiled once with dynamic H/W, which runs a shape it has not seen after 7-30 ms of
preparation, where compiling a static shape costs 50-150 ms; but static kernels run faster (one thread,
fp32: 1.17x at 720p x2, 1.47x at 320x180 x4; bf16 within +-10 %). So a shape runs on the dynamic model
unless it came in one of the last few calls (the frames of a video, the tiles of an image, a folder of one
size), which then gets a static compilation of its own, kept for the next ones. "Recent", not "seen
before": a folder of 2,000 icons of 1,000 sizes sees most sizes twice, far apart, and compiling each of
them (50 ms) cost more than it saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import warnings
from collections import OrderedDict, deque
from functools import cache, partial
from importlib.metadata import version
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import torch
from torch import Tensor, nn

from repsr.config import ModelConfig
from repsr.errors import UserError
from repsr.export.onnx import CONFIG_KEY, QUANT_KEY, read_onnx_metadata, traceable
from repsr.export.quantize import saturation_warning
from repsr.inference.engines.onnxruntime import check_file_precision, file_facts, int8_onnx
from repsr.inference.engines.spec import ArrayRunner, Engine, LoadRequest, Timed
from repsr.inference.upscaler import Upscaler
from repsr.models import model_config

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # INFERENCE_PRECISION_HINT values
CONFIG_PATH = ["repsr", "config"]  # where repsr keeps its ModelConfig in an IR's rt_info
MAX_SHAPES = 8  # statically compiled input shapes kept per model (tiles of a frame come in at most a few sizes)
RECENT = 4  # a shape among the last RECENT calls' shapes gets its own static compilation
# Kernels the dynamic model keeps for the shapes it has run (OpenVINO's default keeps 5,000, ~0.7 MB each for
# M4C16: a folder of 800 icon sizes grew the process by 570 MB; 16 kept it flat, +5 MB).
DYNAMIC_CACHE = {"CPU_RUNTIME_CACHE_CAPACITY": 16}


@cache
def _core() -> Any:
    import openvino as ov

    return ov.Core()


def native_precisions() -> frozenset[str]:
    """Precisions this CPU runs natively, as OpenVINO's CPU plugin reports them."""
    try:
        caps = set(_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # no openvino, or a plugin that cannot say: claim only fp32
        return frozenset({"fp32"})
    return frozenset({"fp32"} | {p for p, cap in (("bf16", "BF16"), ("fp16", "FP16"), ("int8", "INT8"))
                                 if cap in caps})


def _cache_dir() -> Path:
    root = os.environ.get("REPSR_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "repsr"
    return Path(root) / "openvino"


def convert(model: nn.Module) -> Any:
    """A merged PyTorch net as an ``openvino.Model`` with dynamic N/H/W and its config in ``rt_info``."""
    import openvino as ov

    config = model_config(model)
    net, example = traceable(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on the wrapper's shape arithmetic
        ov_model = ov.convert_model(net, example_input=example)
    ov_model.reshape([-1, config.in_channels, -1, -1])
    ov_model.set_rt_info(config.to_json(), CONFIG_PATH)
    return ov_model


def save_ir(ov_model: Any, path: Path) -> None:
    """Write ``path`` (.xml) and its .bin so that neither is ever seen half-written (fp32 weights kept)."""
    import openvino as ov

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as tmp:
        ov.save_model(ov_model, str(Path(tmp) / "m.xml"), compress_to_fp16=False)
        os.replace(Path(tmp) / "m.bin", path.with_suffix(".bin"))
        os.replace(Path(tmp) / "m.xml", path)


def export_ir(model: nn.Module, path: Path) -> None:
    try:
        save_ir(convert(model), path)
    except OSError as exc:
        from repsr.errors import OutputError

        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _cached_conversion(request: LoadRequest) -> Any:
    """The IR of a weights file from the on-disk cache, converting (about a second) on a miss.

    Keyed by the file's bytes, the channel-order override and the repsr and OpenVINO versions; a cache
    that cannot be written (read-only home) only costs the conversion each time.
    """
    import openvino as ov

    key = hashlib.sha256(request.path.read_bytes()).hexdigest()[:24]
    key = hashlib.sha256(f"{key}|{request.bgr}|{version('repsr')}|{ov.__version__}".encode()).hexdigest()[:32]
    target = _cache_dir() / f"{key}.xml"
    if target.is_file() and target.with_suffix(".bin").is_file():
        try:
            return _core().read_model(str(target))
        except Exception:  # a damaged cache entry: convert again and overwrite it
            pass
    ov_model = convert(request.module())
    with contextlib.suppress(OSError):  # no cache: the conversion is simply paid again next time
        save_ir(ov_model, target)
    return ov_model


def _check_ir_xml(path: Path) -> None:
    """A one-line error for an .xml that is not well-formed or not an IR, before OpenVINO probes every frontend
    (which prints other frameworks' parser noise on stderr)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise UserError(f"{path}: not a readable OpenVINO IR ({exc})") from None
    if root.tag != "net":
        raise UserError(f"{path}: not an OpenVINO IR (its root element is <{root.tag}>, not <net>)")


def _read_file(path: Path) -> tuple[Any, ModelConfig | None, str | None]:
    """(model, repsr config or None, INT8 options or None) of an ``.xml`` IR or an ``.onnx`` file."""
    if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").is_file():
        raise UserError(f"{path}: its weights {path.with_suffix('.bin').name} are missing (an OpenVINO IR is "
                        "the .xml and the .bin beside it)")
    if path.suffix.lower() == ".xml":
        _check_ir_xml(path)
    meta = read_onnx_metadata(path) if path.suffix.lower() == ".onnx" else {}
    try:
        ov_model = _core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError with a long multi-line report
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = next((line for line in lines if not line.startswith(("Exception from", "Check "))), type(exc).__name__)
        raise UserError(f"{path}: cannot read as an OpenVINO model ({why[:200]})") from None
    if ov_model.has_rt_info(CONFIG_PATH):
        meta[CONFIG_KEY] = ov_model.get_rt_info(CONFIG_PATH).astype(str)
    config = ModelConfig.from_json(meta[CONFIG_KEY], str(path)) if CONFIG_KEY in meta else None
    warning = saturation_warning(path, meta)
    if warning:
        print(warning, file=sys.stderr)
    return ov_model, config, meta.get(QUANT_KEY)


def _compile_bounded(model: Any, properties: dict[str, object]) -> Any:
    """The dynamic-shape compilation with its per-shape kernel cache bounded (:data:`DYNAMIC_CACHE`); a CPU
    plugin that does not know the setting compiles without it."""
    try:
        return _core().compile_model(model, "CPU", {**properties, **DYNAMIC_CACHE})
    except RuntimeError:
        return _core().compile_model(model, "CPU", properties)


class OpenVinoUpscaler(ArrayRunner):
    """An ``openvino.Model`` on the CPU as an :class:`~repsr.inference.upscaler.Upscaler`."""

    def __init__(self, ov_model: Any, config: ModelConfig | None, precision: str = "fp32", threads: int = 0,
                 bgr: bool | None = None, quantized: str | None = None, path: Path | None = None) -> None:
        self.model, self.config, self.quantized, self.path = ov_model, config, quantized, path
        self.precision = "int8" if quantized else precision
        self.properties: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY",
                                              "INFERENCE_PRECISION_HINT": HINTS.get(precision, "f32")}
        if threads:
            self.properties["INFERENCE_NUM_THREADS"] = threads
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._recent: deque[tuple[int, ...]] = deque(maxlen=RECENT)
        self._dynamic: Any = None
        self.bgr = bool(config and config.bgr) if bgr is None else bgr
        self.scale = config.scale if config else self.probe_scale()
        self.receptive_radius, self.tile_alignment = file_facts(config)

    @property
    def engine(self) -> str:
        return f"openvino {'INT8' if self.quantized else self.precision}"

    def _compiled_for(self, shape: tuple[int, ...]) -> Any:
        compiled = self._compiled.get(shape)
        if compiled is not None:
            self._compiled.move_to_end(shape)
            return compiled
        recent = shape in self._recent
        self._recent.append(shape)
        if not recent and self.model.is_dynamic():
            if self._dynamic is None:
                self._dynamic = _compile_bounded(self.model, self.properties)
            return self._dynamic
        model = self.model.clone()
        try:
            model.reshape(list(shape))
        except Exception:  # a foreign file with fixed dims: run it as it is
            model = self.model
        compiled = _core().compile_model(model, "CPU", self.properties)
        self._compiled[shape] = compiled
        if len(self._compiled) > MAX_SHAPES:
            self._compiled.popitem(last=False)
        return compiled

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        y: np.ndarray = self._compiled_for(x.shape)(x)[0]  # OpenVINO's results are untyped here (no py.typed)
        return y



def _load(request: LoadRequest) -> Upscaler:
    precision = request.precision or "fp32"
    if request.path.suffix.lower() in (".xml", ".onnx"):
        ov_model, config, quantized = _read_file(request.path)
        check_file_precision(request.path, quantized, request.precision)
        return OpenVinoUpscaler(ov_model, config, "fp32" if quantized else precision, request.threads,
                                request.bgr, quantized, request.path)
    check_file_precision(request.path, None, request.precision)
    ov_model = _cached_conversion(request)
    config = ModelConfig.from_json(ov_model.get_rt_info(CONFIG_PATH).astype(str), str(request.path))
    return OpenVinoUpscaler(ov_model, config, precision, request.threads, path=request.path)


def _steady(runner: OpenVinoUpscaler, feed: np.ndarray) -> None:
    """Run ``feed`` twice before timing: the second call compiles its static shape (see the module's docstring),
    which the timed calls then use, as the frames of a video do."""
    runner.run(feed)
    runner.run(feed)


def _bench(model: nn.Module, x: Tensor, threads: int) -> list[Timed]:
    """fp32, every natively supported lower float precision, and the INT8 QDQ file."""
    ov_model, feed = convert(model), x.cpu().numpy()
    rows = []
    for precision in ("fp32", "bf16", "fp16"):
        if precision in native_precisions():
            runner = OpenVinoUpscaler(ov_model, model_config(model), precision, threads)
            _steady(runner, feed)
            rows.append(Timed(runner.engine, partial(runner.run, feed)))
    with tempfile.TemporaryDirectory() as tmp:
        int8_model, config, quantized = _read_file(int8_onnx(model, x, Path(tmp)))
        int8 = OpenVinoUpscaler(int8_model, config, threads=threads, quantized=quantized or "int8")
        _steady(int8, feed)  # compile while the file exists
    rows.append(Timed(int8.engine, lambda: int8.run(feed)))
    return rows


def _bench_file(path: Path, x: Tensor, threads: int, bgr: bool | None) -> list[Timed]:
    ov_model, config, quantized = _read_file(path)
    runner = OpenVinoUpscaler(ov_model, config, threads=threads, bgr=bgr, quantized=quantized)
    feed = x.cpu().numpy()
    _steady(runner, feed)
    return [Timed(runner.engine, lambda: runner.run(feed))]


def clear_cache() -> None:
    """Remove the converted-IR cache (tests; a user may simply delete the folder)."""
    shutil.rmtree(_cache_dir(), ignore_errors=True)


ENGINE = Engine(name="openvino", runtime="OpenVINO", loader=_load, reads=(".xml", ".onnx"), writes=(".xml",),
                exporter=export_ir, precisions=("fp32", "bf16", "fp16", "int8"), package="openvino",
                native=lambda: native_precisions(), bench=_bench, bench_file=_bench_file)
