"""Static INT8 quantization of a repsr network to a QDQ ONNX file, calibrated on training patches.

Why QDQ (QuantizeLinear/DequantizeLinear pairs around float ops) rather than QOperator: it is the
format NPU toolchains (QNN, TensorRT, OpenVINO, TFLite converters) read, and onnxruntime's CPU
provider fuses ``DQ -> Conv -> Q`` into an integer convolution by itself. Weights are quantized
per output channel, symmetric int8: a merged re-parameterized conv has channels whose ranges
differ by orders of magnitude (the merged identity and 1x1 paths concentrate on the centre tap),
which a per-tensor scale would crush -- the known reason merged nets quantize worse than plain ones
(RepVGG#59, ETDS#5).

``onnx`` is imported where it is used: it costs 0.7 s to import, which every ``repsr`` command would
otherwise pay through the engine registry.

Choices that matter for SR (measured in docs/deploy.md):

* The network input is an 8-bit image divided by 255, so its quantization is pinned to exactly
  that grid (``rmin = 0, rmax = 1`` -> scale 1/255, zero point 0): lossless, instead of a
  calibrated range that re-rounds every input pixel.
* ``keep_float`` names the parts left in float. ``"tail"`` keeps the last conv, the pixel shuffle
  and the global-skip add in float: the last conv produces the high-frequency residual whose
  error lands directly in the output pixels, while it is one conv of ``blocks + 2``.
* ``target`` decides the weight encoding from the CPUs that will run the file (:data:`TARGETS`): x86
  CPUs without VNNI sum pairs of u8 x s8 products in int16 and saturate with full-range int8 weights
  (1.8 dB lost on Set5 at x4), so the default encodes weights as *asymmetric uint8*, whose u8 x u8
  kernels widen to int16 operands first and cannot saturate -- and which happened to lose less (0.052
  vs 0.065 dB on VNNI, equal on AVX2, onnxruntime and OpenVINO alike).
* Calibration data are crops of *training* images (never the benchmark sets the drop is reported
  on), degraded exactly as for training, in the channel order the weights expect.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import torch
from torch import nn

from repsr.atomic import atomic_write
from repsr.config import ModelConfig
from repsr.data.crops import load_val_batch
from repsr.data.degrade import DegradeKind
from repsr.errors import UserError
from repsr.export.equalize import equalize_ranges
from repsr.export.onnx import INT8_TARGET_KEY, QUANT_KEY, export_onnx

if TYPE_CHECKING:
    import onnx

CalibrationMethod = Literal["minmax", "entropy", "percentile"]
ActivationType = Literal["uint8", "int8", "uint16", "int16"]
FloatPart = Literal["tail", "head", "skip"]  # a part of the graph left in float (QuantOptions.keep_float)
TargetName = Literal["any", "vnni", "symmetric"]  # the CPUs an INT8 file is made for (TARGETS)
# the spellings, for argparse choices and messages: the Literals' own values
METHODS: tuple[CalibrationMethod, ...] = get_args(CalibrationMethod)
ACTIVATIONS: tuple[ActivationType, ...] = get_args(ActivationType)
KEEP_FLOAT: tuple[FloatPart, ...] = get_args(FloatPart)
# Min-max ranges only cover what calibration saw: with 32 images per folder the v5 x4 file clipped
# activations on held-out images (uint16 drop 0.022 dB, 0.010 with 100; x2 level, x3 +0.004 dB worse).
CALIB_IMAGES = 100


@dataclass(frozen=True)
class Int8Target:
    """What an INT8 file is made for: its weight encoding and the hardware that runs it without saturating.

    ``exact_everywhere`` False means: on an x86 CPU without VNNI the integer kernels saturate
    (``repsr.cpu.sums_int8_exactly``), so runners warn and ``repsr quantize`` measures the damage.
    """

    name: TargetName
    weight_type: Literal["uint8", "int8"]  # asymmetric or symmetric, per channel
    reduce_range: bool  # 7-bit weights: |w| <= 64, so 2 x 255 x 64 < 2^15 in any int16 pair sum
    exact_everywhere: bool
    runs_on: str


TARGETS: dict[str, Int8Target] = {t.name: t for t in (
    Int8Target("any", "uint8", False, True,
               "every CPU: x86 with or without VNNI, ARM (onnxruntime, OpenVINO); the default"),
    Int8Target("vnni", "int8", False, False,
               "x86 CPUs with AVX512-VNNI/AVX-VNNI/AMX, ARM, NPUs; saturates on other x86 CPUs"),
    Int8Target("symmetric", "int8", True, True,
               "every CPU, and toolchains that require symmetric int8 weights (TensorRT, the TFLite int8 spec); "
               "7-bit weights cost ~0.08 dB more"),
)}


@dataclass(frozen=True)
class QuantOptions:
    """How to quantize: calibration method, activation type and the parts kept in float.

    ``keep_float``: ``"tail"`` = last conv + pixel shuffle + skip add; ``"head"`` = first conv;
    ``"skip"`` = only the global-skip add (and the upsampling feeding it).
    """

    method: CalibrationMethod = "minmax"
    activations: ActivationType = "uint8"
    keep_float: tuple[FloatPart, ...] = ("tail",)
    percentile: float = 99.999
    equalize: bool = True  # cross-layer range equalization first (repsr.export.equalize)
    conv_outputs: bool = True  # quantize conv outputs before the activation (False: as if fused)
    target: TargetName = "any"  # the hardware the file is for (TARGETS): decides the weight encoding

    def __post_init__(self) -> None:
        # the types say it; a caller without a type checker (a script, argparse's strings) is held to them here
        if self.target not in TARGETS:
            raise UserError(f"unknown INT8 target '{self.target}' (choose from {', '.join(TARGETS)})")
        if self.method not in METHODS:
            raise UserError(f"unknown calibration method '{self.method}' (choose from {', '.join(METHODS)})")
        if self.activations not in ACTIVATIONS:
            raise UserError(f"unknown activation type '{self.activations}' (choose from {', '.join(ACTIVATIONS)})")
        bad = [k for k in self.keep_float if k not in KEEP_FLOAT]
        if bad:
            raise UserError(f"unknown --keep-float part '{bad[0]}' (choose from {', '.join(KEEP_FLOAT)})")
        if not 90.0 <= self.percentile <= 100.0:
            raise UserError(f"--percentile must be in [90, 100], got {self.percentile}")

    def describe(self) -> str:
        """The options in words, as ``repsr quantize`` prints them and the file's metadata records them."""
        kept = "+".join(self.keep_float) or "nothing"
        method = f"percentile {self.percentile}" if self.method == "percentile" else self.method
        extra = ("" if self.equalize else ", not equalized") + ("" if self.conv_outputs else ", conv outputs float")
        target = TARGETS[self.target]
        weights = f"{'7-bit ' if target.reduce_range else ''}{target.weight_type} per-channel weights"
        return f"{method}, {self.activations} activations, {weights} (target {self.target}), float: {kept}{extra}"


def parse_keep_float(text: str) -> tuple[FloatPart, ...]:
    """``--keep-float``'s value: comma-separated parts (``"tail,head"``), or ``"none"`` for none."""
    text = text.strip()
    if text == "none":
        return ()
    return tuple(_float_part(p.strip()) for p in text.split(",") if p.strip())


def _float_part(name: str) -> FloatPart:
    part = next((p for p in KEEP_FLOAT if p == name), None)
    if part is None:
        raise UserError(f"unknown --keep-float part '{name}' (choose from {', '.join(KEEP_FLOAT)})")
    return part


def _float_nodes(graph: onnx.GraphProto, keep: Sequence[str]) -> list[str]:
    """Names of the nodes that ``keep`` leaves in float, found by graph structure, not by name.

    The tail is the conv feeding the DepthToSpace, the DepthToSpace and everything after it (the
    skip add); the head is the first conv reading the graph input; the skip is the Resize of the
    input and the Add that sums it with the network's residual.
    """
    nodes, names = list(graph.node), set()
    producers = {out: n for n in nodes for out in n.output}
    graph_input = graph.input[0].name
    shuffle = next((n for n in nodes if n.op_type == "DepthToSpace"), None)
    if "tail" in keep and shuffle is not None:
        start = nodes.index(shuffle)
        conv = producers.get(shuffle.input[0])
        names |= {n.name for n in nodes[start:]} | ({conv.name} if conv is not None else set())
    if "head" in keep:
        first = next((n for n in nodes if n.op_type == "Conv" and graph_input in n.input), None)
        names |= {first.name} if first is not None else set()
    if "skip" in keep:
        resizes = [n for n in nodes if n.op_type == "Resize" and graph_input in n.input]
        outputs = {o.name for o in graph.output}
        names |= {n.name for n in resizes} | {n.name for n in nodes if n.op_type == "Add" and set(n.output) & outputs}
    return sorted(names)


def calibration_batches(folders: Sequence[str | Path], config: ModelConfig, images: int = CALIB_IMAGES, crop: int = 64,
                        batch: int = 8, degradation: DegradeKind = "bicubic") -> list[np.ndarray]:
    """Aligned centre crops of up to ``images`` training images per folder, as model-input batches.

    Each crop is ``crop`` LR pixels of an image degraded from its whole HR (MATLAB bicubic by
    default, the shipped models' training degradation), float32 in [0, 1], flipped to BGR for
    BGR-trained weights, stacked ``batch`` at a time (N, 3, crop, crop).
    """
    lr = load_val_batch([str(f) for f in folders], config.scale, degradation=degradation,
                        max_images=images, crop=crop).lr.numpy()
    if config.bgr:
        lr = lr[:, ::-1]
    lr = np.ascontiguousarray(lr, dtype=np.float32)
    # equal batch sizes: onnxruntime's histogram calibrators (entropy, percentile) stack them
    usable = len(lr) if len(lr) < batch else len(lr) // batch * batch
    return [lr[i:i + batch] for i in range(0, usable, batch)]


@contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice and progress on the root logger; keep the CLI's output clean."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print()
            yield
    finally:
        logging.disable(previous)


class _Reader:
    """onnxruntime's ``CalibrationDataReader`` protocol over a list of batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter([{input_name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _ort_settings(options: QuantOptions) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantType

    qtypes = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8, "uint16": QuantType.QUInt16,
              "int16": QuantType.QInt16}
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    extra: dict[str, object] = {"CalibPercentile": options.percentile}
    # 16-bit activations need the com.microsoft Q/DQ ops (onnx's own take 16 bits only from opset 21)
    extra["UseQDQContribOps"] = options.activations.endswith("16")
    if not options.conv_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = ["Conv"]
    target = TARGETS[options.target]
    return {"activation_type": qtypes[options.activations], "weight_type": qtypes[target.weight_type],
            "reduce_range": target.reduce_range, "calibrate_method": methods[options.method], "extra_options": extra}


def quantize_onnx(source: str | Path, target: str | Path, batches: list[np.ndarray],
                  options: QuantOptions = QuantOptions()) -> None:
    """Write a static-quantized QDQ copy of the fp32 ONNX file ``source`` to ``target`` (atomically).

    The ``repsr.config`` metadata is carried over (runners need scale and channel order) and
    ``repsr.quantization`` records the options used.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_static

    if not batches:
        raise UserError("no calibration data")
    proto = onnx.load(str(source))
    settings = _ort_settings(options)
    input_name = proto.graph.input[0].name
    settings["extra_options"]["TensorQuantOverrides"] = {input_name: [{"rmin": np.float32(0.0),
                                                                       "rmax": np.float32(1.0)}]}
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        raw = Path(tmp) / "q.onnx"
        try:
            quantize_static(proto, raw, _Reader(input_name, batches), quant_format=QuantFormat.QDQ,
                            per_channel=True, nodes_to_exclude=_float_nodes(proto.graph, options.keep_float),
                            **settings)
        except Exception as exc:  # onnxruntime raises untyped errors for graphs it cannot quantize
            raise UserError(f"{source}: quantization failed ({str(exc).splitlines()[0][:200]})") from None
        quantized = onnx.load(str(raw))
    del quantized.metadata_props[:]
    for entry in proto.metadata_props:
        if entry.key not in (QUANT_KEY, INT8_TARGET_KEY):
            quantized.metadata_props.add().CopyFrom(entry)
    for key, value in ((QUANT_KEY, options.describe()), (INT8_TARGET_KEY, options.target)):
        mark = quantized.metadata_props.add()
        mark.key, mark.value = key, value
    atomic_write(target, lambda tmp: onnx.save_model(quantized, tmp, save_as_external_data=False))


def quantize_model(model: nn.Module, target: str | Path, batches: list[np.ndarray],
                   options: QuantOptions = QuantOptions()) -> None:
    """Equalize ``model`` (merged, eval) if asked, export it to fp32 ONNX, then :func:`quantize_onnx`."""
    if options.equalize:
        model = equalize_ranges(model, torch.from_numpy(np.concatenate(batches)))
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp) / "fp32.onnx")
        quantize_onnx(Path(tmp) / "fp32.onnx", target, batches, options)


def quantization_of(path: str | Path) -> str | None:
    """The recorded quantization options of an ONNX file, or None for a float one."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return meta.get(QUANT_KEY)


INT16_MAX = 32767


def pair_sum_bound(path: str | Path) -> int:
    """The largest ``|a1 w1 + a2 w2|`` (8-bit activations a, int8 weights w) that an int16 pair-summing kernel
    (``vpmaddubsw``, x86 without VNNI) can meet in this file's integer convs; above :data:`INT16_MAX` it saturates.

    Worst case over any input: activations reach 255 (uint8, or int8 shifted by 128 as onnxruntime does), so
    the bound is ``2 x 255 x max|w|`` over the int8 weight tensors. uint8 weights run u8 x u8 kernels that widen
    both operands to int16 before multiplying (``vpmaddwd``, int32 sums): they contribute 0. Independent of the
    CPU at hand, so a test holds every target to it on any machine.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    weights = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    bound = 0
    for node in proto.graph.node:
        w = weights.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if w is not None and w.dtype == np.int8 and w.ndim == 4:
            bound = max(bound, 2 * 255 * int(np.abs(w.astype(np.int32)).max()))
    return bound


def target_of(metadata: dict[str, str]) -> Int8Target | None:
    """The target an INT8 file was made for, from its metadata; files made before targets existed had
    full-range int8 weights (``vnni``). None for a float file."""
    if QUANT_KEY not in metadata:
        return None
    return TARGETS.get(metadata.get(INT8_TARGET_KEY, "vnni"), TARGETS["vnni"])


def saturation_warning(path: str | Path, metadata: dict[str, str]) -> str | None:
    """A warning when this CPU's INT8 kernels saturate on the file ``path``, else None."""
    from repsr.cpu import sums_int8_exactly

    target = target_of(metadata)
    if target is None or target.exact_everywhere or sums_int8_exactly():
        return None
    return (f"warning: {path} has full-range int8 weights (made for {target.name} CPUs); this CPU has no VNNI, so its "
            "INT8 kernels saturate and lose up to ~2 dB: re-quantize with `repsr quantize ... --target any`")


__all__ = ["ACTIVATIONS", "INT16_MAX", "KEEP_FLOAT", "METHODS", "TARGETS", "ActivationType", "CalibrationMethod",
           "FloatPart", "Int8Target", "QuantOptions", "TargetName", "calibration_batches", "pair_sum_bound",
           "parse_keep_float", "quantization_of", "quantize_model", "quantize_onnx", "saturation_warning", "target_of"]
