"""Core ML export: a merged net as an ML Program ``.mlpackage`` (Xcode, iOS/iPadOS/macOS apps), fp32 or fp16.

The file's interface is the ONNX file's: one input ``input``, (1, 3, H, W) float32 RGB in [0, 1] (an app
divides 8-bit pixels by 255), and one output ``output``, (1, 3, sH, sW) float32 RGB, not clamped (the app
clamps to [0, 1] before multiplying by 255, as :func:`repsr.inference.super_resolve` does). A BGR-trained net
(the official Bicubic++ release) gets its order reversed inside the graph, so every file is RGB. The
model's :class:`~repsr.config.ModelConfig` is kept in the package's user metadata (``repsr.config``), as the
file's interface states it: RGB.

Flexible size: a bounded ``RangeDim`` per side (1 to :data:`MAX_SIDE`, default :data:`DEFAULT_SIDE`), not
``EnumeratedShapes``. An upscaler meets every image size and every edge tile, and an enumerated set would
make the app pad each one to a listed shape. The price, per Apple's engineers: a range-flexible model runs
on the Neural Engine only at its default shape, other shapes on the GPU or CPU. The default is therefore a
tile size (256 x 256), so an app that tiles at that size gets the Neural Engine for all but its edge tiles.

Precision: ``fp32`` computes in float32; ``fp16`` stores weights and computes activations in float16 (what
the GPU and the Neural Engine run natively), the input and output staying float32.

Why a TorchScript trace and not ``torch.export``: Core ML has no 2-D pad whose amounts depend on the input
size, so Bicubic++'s odd-size padding is written with constant pads (:class:`AnySizeForward`), and
``torch.export`` cannot prove that forward's crops in range for every size, while the trace records them as
shape arithmetic, which the converter maps to Core ML's ``shape``/``slice_by_index`` ops.

coremltools converts on Linux but runs models only on macOS: here the written package is read back with
coremltools' own spec reader (:func:`read_package`: names, size ranges, op types, weights) and never run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repsr.atomic import atomic_write_folder
from repsr.errors import OutputError, UserError
from repsr.export.quiet import quiet
from repsr.models import declared_facts, model_config

INPUT, OUTPUT = "input", "output"
CONFIG_KEY = "repsr.config"
PRECISIONS = ("fp32", "fp16")
MAX_SIDE = 4096  # input pixels per side the package accepts (x4: a 16384-pixel output side)
DEFAULT_SIDE = 256  # the shape Core ML plans for (and runs on the Neural Engine): a tile
WEIGHT_OPS = {"conv": ("weight", "bias"), "prelu": ("alpha",)}  # the ops whose constants are the net's weights


class AnySizeForward(nn.Module):
    """``model`` on any input size, with the odd-size handling of a stride-``align`` net in constant pads.

    Replicate-pads ``align - 1`` rows and columns, crops to the next multiple of ``align`` (so a side that
    was a multiple loses the pad again) and crops the output to ``scale`` times the input: the same function
    as padding ``-h % align`` rows by replication (``BicubicPP.forward``), with pad amounts that do not
    depend on the size. ``bgr`` reverses the colour order on the way in and out (an RGB file).
    """

    def __init__(self, model: nn.Module, align: int, bgr: bool) -> None:
        super().__init__()
        self.model, self.align, self.bgr = model, align, bgr
        self.scale = model_config(model).scale

    def forward(self, x: Tensor) -> Tensor:
        if self.bgr:
            x = x.flip(1)
        if self.align > 1:
            h, w, a = x.shape[-2], x.shape[-1], self.align
            x = F.pad(x, (0, a - 1, 0, a - 1), mode="replicate")[..., : (h + a - 1) // a * a, : (w + a - 1) // a * a]
            y: Tensor = self.model(x)[..., : h * self.scale, : w * self.scale]
        else:
            y = self.model(x)
        return y.flip(1) if self.bgr else y


def rgb_any_size(model: nn.Module) -> nn.Module:
    """``model`` (a merged net) as the function the package computes: RGB in and out, any size."""
    config = model_config(model)
    align = declared_facts(config)[1]
    if align == 1 and not config.bgr:
        return model
    return AnySizeForward(model, align, bool(config.bgr)).eval()


def traced(model: nn.Module) -> torch.jit.ScriptModule:
    """The TorchScript trace the converter reads: :func:`rgb_any_size` of ``model`` traced on a 35 x 38 input
    (an odd and an even side, so no size is special), its crops recorded as shape arithmetic."""
    with quiet(), torch.no_grad():
        net, x = rgb_any_size(model.eval().float().cpu()), torch.rand(1, 3, 35, 38)
        out: torch.jit.ScriptModule = torch.jit.trace(net, x)  # type: ignore[no-untyped-call]  # unannotated in torch
    return out


def _coremltools() -> Any:
    with quiet():
        import coremltools

    return coremltools


def coreml_model(model: nn.Module, precision: str = "fp32") -> Any:
    """A merged net as a ``coremltools.models.MLModel`` (ML Program), not yet saved."""
    if precision not in PRECISIONS:
        raise UserError(f"Core ML packages store {' or '.join(PRECISIONS)} weights, not {precision}")
    config = model_config(model)
    if config.in_channels != 3:
        raise UserError(f"Core ML export writes RGB nets, not {config.in_channels}-channel ones")
    ct = _coremltools()
    side = ct.RangeDim(lower_bound=1, upper_bound=MAX_SIDE, default=DEFAULT_SIDE)
    compute = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    with quiet(), torch.no_grad():
        ml = ct.convert(traced(model), inputs=[ct.TensorType(name=INPUT, shape=ct.Shape((1, 3, side, side)))],
                        outputs=[ct.TensorType(name=OUTPUT)], convert_to="mlprogram", compute_precision=compute,
                        minimum_deployment_target=ct.target.iOS15)
    s = config.scale
    ml.short_description = f"repsr {config.arch} x{s} super-resolution ({precision})"
    ml.author = "repsr"
    ml.input_description[INPUT] = f"RGB image, 1 x 3 x H x W float32 in [0, 1] (pixels / 255), H and W 1..{MAX_SIDE}"
    ml.output_description[OUTPUT] = (f"RGB image, 1 x 3 x {s}H x {s}W float32, not clamped: clamp to [0, 1], then "
                                     "multiply by 255")
    ml.user_defined_metadata[CONFIG_KEY] = dataclasses.replace(config, bgr=False).to_json()  # the file is RGB
    ml.user_defined_metadata["repsr.precision"] = precision
    return ml


def is_package(path: Path) -> bool:
    """Whether ``path`` is a Core ML package folder (what may be replaced): its ``Manifest.json`` names one."""
    try:
        manifest = json.loads((path / "Manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "rootModelIdentifier" in manifest and "itemInfoEntries" in manifest


def export_coreml(model: nn.Module, path: str | Path, precision: str = "fp32") -> list[str]:
    """Write ``path`` (an ``.mlpackage`` folder) atomically; returns the notes a user needs.

    The package is written into a temporary folder beside ``path``, read back (:func:`check_package`: a
    package that does not hold the net's weights is never renamed into place) and then moved onto ``path``.
    An existing ``path`` is replaced only when it is a Core ML package: never a file or another folder.
    """
    path = Path(path)
    if path.suffix.lower() != ".mlpackage":
        raise UserError(f"{path}: a Core ML package is a folder named *.mlpackage")
    if path.exists() and not (path.is_dir() and is_package(path)):
        what = "a folder that is not a Core ML package" if path.is_dir() else "a file"
        raise OutputError(f"{path} exists and is {what}: not overwriting it (choose another name or remove it)")
    ml = coreml_model(model, precision)

    def write(tmp: str) -> None:
        package = Path(tmp) / path.name
        with quiet():
            ml.save(str(package))
        check_package(package, model, precision)
        for item in package.iterdir():  # the temporary folder becomes the package itself
            item.rename(Path(tmp) / item.name)
        package.rmdir()

    atomic_write_folder(path, write)
    config = model_config(model)
    notes = [f"Core ML ML Program: input '{INPUT}' 1x3xHxW RGB float32 in [0, 1] (H, W 1..{MAX_SIDE}), output "
             f"'{OUTPUT}' 1x3x{config.scale}Hx{config.scale}W, not clamped; {precision}; iOS 15 / macOS 12 or later",
             f"flexible size: any H and W in range; the Neural Engine runs the default {DEFAULT_SIDE}x{DEFAULT_SIDE} "
             "(tile at that size), other sizes run on the GPU or CPU",
             "checked with coremltools' spec reader (names, sizes, ops, weights); not executed here: Core ML runs "
             "on Apple devices only"]
    if config.bgr:
        notes.append("these weights were trained on BGR images: the file reverses the order inside, so it takes "
                     "RGB (do not swap channels in the app)")
    return notes


@dataclass(frozen=True)
class PackageSummary:
    """What coremltools' spec reader says about a package: the interface, ops, weights and metadata."""

    inputs: dict[str, tuple[str, tuple[tuple[int, int], ...], tuple[int, ...]]]  # name -> (FLOAT32, ranges, default)
    outputs: dict[str, str]  # name -> array type (FLOAT32)
    ops: frozenset[str]
    weights: list[np.ndarray]  # conv weights and biases, PReLU slopes, in program order
    metadata: dict[str, str]


def read_package(path: str | Path) -> PackageSummary:
    """Read an ``.mlpackage`` with coremltools (no Core ML runtime needed): interface, op types, weights.

    The weights come from coremltools' MIL reader (``milproto.load``), which resolves the constants stored in
    the package's ``weights/weight.bin``, so they are the values a device would load.
    """
    ct = _coremltools()
    with quiet():
        from coremltools.converters.mil.frontend.milproto import load as milproto

        try:
            ml = ct.models.MLModel(str(path), skip_model_load=True)
        except Exception as exc:  # coremltools raises bare Exceptions for unreadable packages
            raise UserError(f"{path}: not a readable Core ML package ({str(exc).splitlines()[0][:200]})") from None
        spec = ml.get_spec()
        program = milproto.load(spec, spec.specificationVersion, ml.weights_dir)
    dtype = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name  # FLOAT32, FLOAT16, ...
    inputs = {}
    for feature in spec.description.input:
        array = feature.type.multiArrayType
        ranges = tuple((r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges)
        inputs[feature.name] = (dtype(array.dataType), ranges, tuple(array.shape))
    outputs = {f.name: dtype(f.type.multiArrayType.dataType) for f in spec.description.output}
    operations = list(program.functions["main"].operations)
    weights = [np.asarray(op.inputs[name].val) for op in operations if op.op_type in WEIGHT_OPS
               for name in WEIGHT_OPS[op.op_type] if name in op.inputs and op.inputs[name].val is not None]
    return PackageSummary(inputs, outputs, frozenset(op.op_type for op in operations), weights,
                          dict(spec.description.metadata.userDefined))


def check_package(path: Path, model: nn.Module, precision: str) -> None:
    """Raise if the package at ``path`` is not ``model``: names, the RGB config, every weight (rounded to fp16
    for an fp16 package). A failure here is a converter bug, so it is an error with a traceback."""
    summary = read_package(path)
    want = [p.detach().float().cpu().numpy() for p in model.parameters()]
    if precision == "fp16":
        want = [w.astype(np.float16).astype(np.float32) for w in want]
    got = [w.astype(np.float32) for w in summary.weights]
    same = len(got) == len(want) and all(
        g.shape == w.shape and np.array_equal(g, w) for g, w in zip(got, want, strict=False))
    if list(summary.inputs) != [INPUT] or list(summary.outputs) != [OUTPUT] or not same:
        raise RuntimeError(f"{path}: the converted package does not hold the merged net (inputs {list(summary.inputs)}"
                           f", outputs {list(summary.outputs)}, {len(got)} weight arrays for {len(want)})")
