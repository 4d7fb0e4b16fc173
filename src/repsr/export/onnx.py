"""ONNX export of repsr models, and an onnxruntime-backed upscaler that runs the file.

Exporter choice: PyTorch's default ``dynamo=True`` exporter (torch >= 2.9, needs ``onnxscript``),
with ``external_data=False`` so the result is one self-contained file (otherwise it writes a
separate ``.onnx.data``). It handles symbolic batch/height/width cleanly; the legacy TorchScript
exporter would bake Python branches on the example size into the graph. A merged VGG-style net
exports to just Conv, PRelu, DepthToSpace, Resize (nearest) and Add at opset 18, and
onnxruntime matches PyTorch within ~4e-7 at any size (tests check odd sizes).

Models with a stride-2 first conv (Bicubic++) branch on odd input sizes in Python; the export
wrapper pads every input to the model's alignment by replication (a no-op pad of zero rows for
even sizes) and crops, so the graph has no size-dependent branch. The model's :class:`ModelConfig`
is stored as JSON in the ONNX metadata (``repsr.config``) so the runner knows scale and channel order
(:mod:`repsr.inference.engines.onnxruntime` runs the file; OpenVINO reads it too).

PyTorch's PixelShuffle exports as DepthToSpace in CRD mode (channels ordered (c, i, j)). The
writer reorders the producing conv's output channels to (i, j, c) and switches the node to DCR
mode: the same function (equal outputs, tested), and onnxruntime's DCR rearrangement was 1-6 %
faster per frame for Bicubic++ 720p -> 4K in five interleaved runs (docs/bicubic_pp.md).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repsr.atomic import atomic_write
from repsr.errors import UserError
from repsr.models import declared_facts, model_config

if TYPE_CHECKING:
    import onnx  # at run time imported where used: importing it slows every repsr command's startup

CONFIG_KEY = "repsr.config"
QUANT_KEY = "repsr.quantization"  # set by repsr.export.quantize: the options of an INT8 file
INT8_TARGET_KEY = "repsr.int8_target"  # the CPUs an INT8 file was made for (repsr.export.quantize.TARGETS)


class AlignedForward(nn.Module):
    """``model`` with inputs replicate-padded to a multiple of ``align`` and outputs cropped back."""

    def __init__(self, model: nn.Module, align: int) -> None:
        super().__init__()
        self.model, self.align, self.scale = model, align, model_config(model).scale

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % self.align, 0, (-h) % self.align), mode="replicate")
        y: Tensor = self.model(x)
        return y[..., : h * self.scale, : w * self.scale]


def traceable(model: nn.Module) -> tuple[nn.Module, Tensor]:
    """``model`` (eval, fp32, CPU) wrapped so one trace holds for every input size, and an example input.

    The example has odd multiples of the alignment in both dimensions, so no size happens to be special.
    """
    config = model_config(model)
    model = model.eval().float().cpu()
    align = declared_facts(config)[1]
    net = AlignedForward(model, align).eval() if align > 1 else model
    return net, torch.rand(1, config.in_channels, 16 * align + align, 16 * align + 2 * align)


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an ONNX file (``repsr.config``, ``repsr.quantization``), or a one-line error."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise UserError(f"{path}: cannot read ONNX model ({str(exc).splitlines()[0][:200] if str(exc) else exc!r})") \
            from None
    return {entry.key: entry.value for entry in proto.metadata_props}


def export_onnx(model: nn.Module, path: str | Path, opset: int = 18) -> None:
    """Write ``model`` (in eval mode, float32, CPU) to ``path`` as one ONNX file with dynamic N/H/W.

    The graph takes the model's raw input (float32 in [0, 1], in the channel order the weights
    expect) and does not clamp: callers clamp, exactly as :func:`repsr.inference.super_resolve`.
    """
    config = model_config(model)
    net, example = traceable(model)
    dim = torch.export.Dim
    shapes = ({0: dim("batch"), 2: dim("height"), 3: dim("width")},)
    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, verbose=False,
                                        dynamic_shapes=shapes, input_names=["input"], output_names=["output"])
        assert program is not None  # the dynamo exporter always returns an ONNXProgram
        onnx_model = program.model_proto
        shuffles_to_dcr(onnx_model)
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = CONFIG_KEY, config.to_json()
        import onnx

        onnx.save_model(onnx_model, tmp, save_as_external_data=False)

    logger = logging.getLogger("torch.onnx")  # the exporter's progress notes: quiet for this export only
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        atomic_write(path, write)
    except torch.onnx.errors.OnnxExporterError as exc:
        raise UserError(f"ONNX export of {config.arch} failed: {str(exc).splitlines()[0]}") from None
    finally:
        logger.setLevel(level)


def shuffles_to_dcr(proto: onnx.ModelProto) -> None:
    """Rewrite every CRD DepthToSpace fed only by a Conv with constant weights into DCR mode, in place.

    CRD reads input channel ``c * r * r + i * r + j``, DCR reads ``(i * r + j) * C + c``; moving
    conv output channel ``c * r * r + i * r + j`` (weights and bias) to position ``(i * r + j) * C + c``
    makes DCR produce exactly what CRD did.
    """
    from onnx import numpy_helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    producers = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        mode = next((a for a in node.attribute if a.name == "mode"), None)
        conv = producers.get(node.input[0])
        if node.op_type != "DepthToSpace" or mode is None or mode.s != b"CRD" or conv is None:
            continue
        params = [inits[name] for name in conv.input[1:] if name in inits]
        if conv.op_type != "Conv" or len(params) < len(conv.input) - 1 or consumers.get(node.input[0]) != 1 \
                or any(consumers.get(t.name) != 1 for t in params):
            continue
        r = next(a.i for a in node.attribute if a.name == "blocksize")
        channels = numpy_helper.to_array(params[0]).shape[0]
        order = np.arange(channels).reshape(channels // (r * r), r * r).T.reshape(-1)
        for tensor in params:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor)[order], tensor.name))
        mode.s = b"DCR"
