"""onnxruntime: runs the ``.onnx`` files ``repsr merge`` (fp32) and ``repsr quantize`` (INT8 QDQ) write.

A weights file given to this engine is merged and exported to a temporary ONNX file first (the
exporter, :func:`repsr.export.onnx.export_onnx`, takes seconds). onnxruntime fuses an INT8 file's
quantize/dequantize pairs into integer kernels by itself.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from repsr.config import ModelConfig
from repsr.errors import UserError
from repsr.export.onnx import CONFIG_KEY, QUANT_KEY, export_onnx
from repsr.export.quantize import QuantOptions, quantize_onnx, saturation_warning
from repsr.inference.engines.spec import ArrayRunner, Engine, LoadRequest, Timed
from repsr.inference.upscaler import Upscaler
from repsr.models import declared_facts

FOREIGN_RADIUS = 16  # tile context for a model file without repsr metadata: generous for small SR nets


def file_facts(config: ModelConfig | None) -> tuple[int, int]:
    """(receptive radius, tile alignment) of a model file: its family's, or generous ones for a foreign file."""
    return declared_facts(config) if config else (FOREIGN_RADIUS, 1)


class OnnxUpscaler(ArrayRunner):
    """An ONNX file run by onnxruntime: an :class:`repsr.inference.Upscaler` like ``TorchUpscaler``.

    Scale, channel order, receptive radius and tile alignment come from the ``repsr.config``
    metadata (the radius and alignment its model family declares) when present; a foreign ONNX file
    (RGB assumed unless ``bgr``) gets its scale from one tiny probe run and, as it cannot say its
    field, :data:`FOREIGN_RADIUS` pixels of tile context and no alignment. The same class runs
    fp32 files (``repsr merge``) and INT8 QDQ files (``repsr quantize``): onnxruntime fuses the
    quantize/dequantize pairs into integer kernels by itself. ``quantized`` says which it is.
    """

    def __init__(self, path: str | Path, threads: int = 0, bgr: bool | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise UserError(f"{path}: cannot load ONNX model ({str(exc).splitlines()[0][:200]})") from None
        self.path, self.threads = Path(path), threads
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.config = ModelConfig.from_json(meta[CONFIG_KEY], str(path)) if CONFIG_KEY in meta else None
        self.quantized = meta.get(QUANT_KEY)
        warning = saturation_warning(path, meta)
        if warning:
            print(warning, file=sys.stderr)
        self.bgr = bool(self.config and self.config.bgr) if bgr is None else bgr
        self.scale = self.config.scale if self.config else self.probe_scale()
        self.receptive_radius, self.tile_alignment = file_facts(self.config)

    @property
    def engine(self) -> str:
        return "onnxruntime INT8" if self.quantized else "onnxruntime"

    def run(self, x: np.ndarray) -> np.ndarray:
        y: np.ndarray = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return y



def check_file_precision(path: Path, quantized: object, precision: str | None) -> None:
    """An INT8 request needs an INT8 file, and an INT8 file runs as INT8: say so instead of pretending."""
    if precision == "int8" and not quantized:
        raise UserError(f"{path}: --precision int8 runs an INT8 file; make one with "
                        "`repsr quantize MODEL -o model-int8.onnx --calib DIR`")
    if precision not in (None, "int8") and quantized:
        raise UserError(f"{path} is an INT8 file: drop --precision {precision} (or pass --precision int8)")


def _load(request: LoadRequest) -> Upscaler:
    if request.path.suffix.lower() == ".onnx":
        runner = OnnxUpscaler(request.path, threads=request.threads, bgr=request.bgr)
        check_file_precision(request.path, runner.quantized, request.precision)
        return runner
    check_file_precision(request.path, None, request.precision)
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(request.module(), Path(tmp) / "model.onnx")
        return OnnxUpscaler(Path(tmp) / "model.onnx", threads=request.threads)


def int8_onnx(model: nn.Module, x: Tensor, folder: Path) -> Path:
    """An INT8 QDQ file of ``model`` (repsr quantize's defaults) for timing: calibrated on a crop of ``x``,
    since speed does not depend on the ranges and a random-weight bench net has no training data anyway."""
    export_onnx(model, folder / "m.onnx")
    quantize_onnx(folder / "m.onnx", folder / "q.onnx", [x[:1, :, :64, :64].cpu().numpy()], QuantOptions())
    return folder / "q.onnx"


def _bench(model: nn.Module, x: Tensor, threads: int) -> list[Timed]:
    """fp32 export and its INT8 QDQ quantization."""
    with tempfile.TemporaryDirectory() as tmp:
        int8 = OnnxUpscaler(int8_onnx(model, x, Path(tmp)), threads=threads)
        fp32 = OnnxUpscaler(Path(tmp) / "m.onnx", threads=threads)
    feed = x.cpu().numpy()
    return [Timed("onnxruntime fp32", lambda: fp32.run(feed)), Timed("onnxruntime INT8", lambda: int8.run(feed))]


def bench_file(path: Path, x: Tensor, threads: int, bgr: bool | None) -> list[Timed]:
    runner = OnnxUpscaler(path, threads=threads, bgr=bgr)
    feed = x.cpu().numpy()
    return [Timed(f"{runner.engine}{'' if runner.quantized else ' fp32'}", lambda: runner.run(feed))]


ENGINE = Engine(name="onnx", runtime="onnxruntime", loader=_load, reads=(".onnx",), writes=(".onnx",),
                exporter=export_onnx, precisions=("fp32", "int8"), package="onnxruntime",
                native=lambda: frozenset({"fp32", "int8"}), bench=_bench, bench_file=bench_file)
