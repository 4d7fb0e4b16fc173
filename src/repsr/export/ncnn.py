"""ncnn export: a merged net as ncnn's ``.param`` (text graph) and ``.bin`` (weights), written directly.

Why by hand and not through ONNX or pnnx: the graph needs eight layer types, and ncnn's file format is small
and documented, while the converters break what users of Upscayl ask about most: ONNX's DepthToSpace is not
an ncnn layer, and converted blobs are named ``in0``/``out0``. The files follow realesrgan-ncnn-vulkan's
convention, which Upscayl runs: input blob ``data``, output blob ``output``, RGB in [0, 1] -> [0, 1] (the
client multiplies by 255), any height and width, the nearest-neighbour global skip inside the graph.

Format (ncnn's "param and model file structure"): ``.param`` is the magic ``7767517``, ``layers blobs``, then
one line per layer, ``Type name inputs outputs bottom... top... id=value...`` (a float value has a dot or an
exponent; an array is ``-233xx=count,v,...`` for id ``xx``). ``.bin`` holds the weights in layer order: a
Convolution's kernel ``(out, in, kh, kw)`` after a 4-byte tag (0: fp32; 0x01306B47: fp16, padded to 4 bytes),
then its bias as plain fp32; a PReLU's slopes as plain fp32.

Channel order: ncnn clients feed RGB, so weights trained on BGR (the official Bicubic++ release) have the
order folded into the first conv's input channels and the last conv's output channel groups; every file is
RGB. Bicubic++'s odd sizes are handled inside the graph, as :class:`repsr.models.BicubicPP` does (see
:func:`_bicubic_pp_layers`), so any client gets ``scale`` times its input at any size.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from typing import NamedTuple, TypedDict

import numpy as np
import torch
from torch import Tensor, nn

from repsr.atomic import atomic_write
from repsr.config import ModelConfig
from repsr.errors import OutputError, UserError
from repsr.models import BicubicPP, CompactSR, model_config

MAGIC = "7767517"
FP16_TAG = 0x01306B47  # ncnn's tag for fp16 weights; 0 means fp32
INPUT, OUTPUT = "data", "output"  # realesrgan-ncnn-vulkan's blob names
PRECISIONS = ("fp32", "fp16")
WEIGHTLESS = {"Input", "Split", "PixelShuffle", "Interp", "BinaryOp", "Padding", "Pooling", "Crop", "ReLU", "Eltwise",
              "Concat", "Sigmoid", "Clip", "Noop"}  # layer types that read nothing from the .bin

Param = int | float | tuple[float, ...]


class Layer(NamedTuple):
    """One line of a ``.param`` file."""

    kind: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict[int, Param] = {}

    def line(self) -> str:
        def value(v: Param) -> str:
            if isinstance(v, tuple):
                return ",".join([str(len(v)), *(f"{x:e}" for x in v)])
            return f"{v:e}" if isinstance(v, float) else str(v)

        pairs = [f"{-23300 - k if isinstance(v, tuple) else k}={value(v)}" for k, v in self.params.items()]
        return " ".join([f"{self.kind:<16}", f"{self.name:<16}", str(len(self.bottoms)), str(len(self.tops)),
                         *self.bottoms, *self.tops, *pairs])


def _tagged(weight: Tensor, fp16: bool) -> bytes:
    values = weight.detach().float().cpu().contiguous().numpy().ravel()
    if not fp16:
        return struct.pack("<I", 0) + values.astype("<f4").tobytes()
    data = values.astype("<f2").tobytes()
    return struct.pack("<I", FP16_TAG) + data + b"\0" * (-len(data) % 4)


def _plain(values: Tensor) -> bytes:
    return values.detach().float().cpu().contiguous().numpy().astype("<f4").tobytes()


def _conv(name: str, conv: nn.Conv2d, bottom: str, top: str, fp16: bool, weight: Tensor | None = None,
          bias: Tensor | None = None, slope: float | None = None) -> tuple[Layer, bytes]:
    """A Convolution layer (``weight``/``bias`` replace the module's: channel-order folding), optionally with a
    fused leaky ReLU of ``slope`` (ncnn's activation_type 2)."""
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise UserError(f"ncnn export: {name} is a grouped or non-zero-padded conv, which repsr does not write")
    weight = conv.weight if weight is None else weight
    bias = conv.bias if bias is None else bias
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    params: dict[int, Param] = {0: weight.shape[0], 1: kw, 11: kh, 2: dw, 12: dh, 3: sw, 13: sh, 4: pw, 14: ph,
                                5: int(bias is not None), 6: weight.numel()}
    if slope is not None:
        params.update({9: 2, 10: (float(slope),)})
    blob = _tagged(weight, fp16) + (_plain(bias) if bias is not None else b"")
    return Layer("Convolution", name, (bottom,), (top,), params), blob


def _out_groups_reversed(t: Tensor, groups: int) -> Tensor:
    """``t`` (out, ...) with its ``groups`` blocks of output channels in reverse order: the colour-major channel
    order of a pixel shuffle's input (``c * r * r + i * r + j``), so BGR outputs become RGB."""
    return t.reshape(groups, -1, *t.shape[1:]).flip(0).reshape(t.shape)


class _Fold(TypedDict, total=False):
    """Replacement weights of one conv (keyword arguments of :func:`_conv`)."""

    weight: Tensor
    bias: Tensor | None


def _rgb(config: ModelConfig, first: nn.Conv2d, last: nn.Conv2d) -> tuple[_Fold, _Fold]:
    """Weights of the first and last conv for an RGB file: a BGR net ``f`` becomes ``P f(P x)`` (``P`` reverses
    the colours), which is the same function on RGB pixels."""
    if not config.bgr:
        return {}, {}
    if config.in_channels != 3:
        raise UserError(f"ncnn export: a BGR net needs 3 input channels, not {config.in_channels}")
    bias = None if last.bias is None else _out_groups_reversed(last.bias, 3)
    return {"weight": first.weight.flip(1)}, {"weight": _out_groups_reversed(last.weight, 3), "bias": bias}


def _compact_layers(model: CompactSR, fp16: bool) -> tuple[list[Layer], list[bytes]]:
    """CompactSR: ``body`` (Conv3x3 + PReLU stack), PixelShuffle(s), plus the nearest-upsampled input."""
    config = model.config
    body = list(model.body)
    convs = [m for m in body if isinstance(m, nn.Conv2d)]
    folds = dict(zip((id(convs[0]), id(convs[-1])), _rgb(config, convs[0], convs[-1]), strict=True))
    layers = [Layer("Input", "input", (), (INPUT,)), Layer("Split", "split", (INPUT,), ("body_in", "skip_in"))]
    blobs, bottom = [], "body_in"
    for i, module in enumerate(body):
        top = f"body{i}"
        if isinstance(module, nn.Conv2d):
            layer, blob = _conv(f"conv{i}", module, bottom, top, fp16, **folds.get(id(module), _Fold()))
        elif isinstance(module, nn.PReLU):
            layer, blob = Layer("PReLU", f"prelu{i}", (bottom,), (top,), {0: module.weight.numel()}), _plain(
                module.weight)
        else:
            raise UserError(f"ncnn export: {type(module).__name__} in a Compact body is not a layer repsr writes")
        layers.append(layer)
        blobs.append(blob)
        bottom = top
    s = float(config.scale)
    layers += [Layer("PixelShuffle", "shuffle", (bottom,), ("residual",), {0: config.scale, 1: 0}),
               Layer("Interp", "skip", ("skip_in",), ("upsampled",), {0: 1, 1: s, 2: s}),
               Layer("BinaryOp", "add", ("residual", "upsampled"), (OUTPUT,), {0: 0})]
    return layers, blobs


def _bicubic_pp_layers(model: BicubicPP, fp16: bool) -> tuple[list[Layer], list[bytes]]:
    """Bicubic++, with the module's odd-size handling written as layers that need no size-dependent branch.

    The module replicates one row/column onto an odd side and crops the output to ``scale`` times the input.
    Here every input gets one replicated row and column (Padding), then is cropped to ``2 * ceil(H / 2)`` by
    ``2 * ceil(W / 2)``, the size of a reference blob (the input sampled 1-in-2 by a 1x1 stride-2 Pooling,
    ``ceil(H / 2)`` rows, upsampled x2): even sides lose the extra row again, odd sides keep it, exactly the
    module's padded input. The output is cropped to the size of the input upsampled by ``scale``.
    """
    config = model.config
    first_fold, last_fold = _rgb(config, model.conv0, model.conv_out)
    slope = float(model.act.negative_slope)
    s = float(config.scale)
    layers = [Layer("Input", "input", (), (INPUT,)),
              Layer("Split", "split", (INPUT,), ("pad_in", "grid_in", "size_in")),
              Layer("Padding", "replicate", ("pad_in",), ("padded",), {0: 0, 1: 1, 2: 0, 3: 1, 4: 1}),
              Layer("Pooling", "half_grid", ("grid_in",), ("half",), {0: 0, 1: 1, 2: 2, 5: 1}),
              Layer("Interp", "even_grid", ("half",), ("even",), {0: 1, 1: 2.0, 2: 2.0}),
              Layer("Crop", "to_even", ("padded", "even"), ("x",))]
    convs = [_conv("conv0", model.conv0, "x", "x0", fp16, slope=slope, **first_fold),
             _conv("conv1", model.conv1, "x0_a", "y1", fp16, slope=slope),
             _conv("conv2", model.conv2, "y1", "y2", fp16, slope=slope)]
    tail = _conv("conv_out", model.conv_out, "y", "z", fp16, **last_fold)
    layers += [convs[0][0], Layer("Split", "split_x0", ("x0",), ("x0_a", "x0_b")), convs[1][0], convs[2][0],
               Layer("BinaryOp", "residual", ("y2", "x0_b"), ("y",), {0: 0}), tail[0],
               Layer("PixelShuffle", "shuffle", ("z",), ("big",), {0: 2 * config.scale, 1: 0}),
               Layer("Interp", "out_size", ("size_in",), ("target",), {0: 1, 1: s, 2: s}),
               Layer("Crop", "crop", ("big", "target"), (OUTPUT,))]
    return layers, [blob for _, blob in convs] + [tail[1]]


def ncnn_model(model: nn.Module, precision: str = "fp32") -> tuple[str, bytes]:
    """``(param text, bin bytes)`` of a merged Compact or Bicubic++ net; ``precision`` fp16 stores the conv kernels
    as fp16 (half the file; biases and slopes stay fp32, as ncnn reads them)."""
    if precision not in PRECISIONS:
        raise UserError(f"ncnn files store {' or '.join(PRECISIONS)} weights, not {precision}")
    fp16 = precision == "fp16"
    with torch.no_grad():
        if isinstance(model, CompactSR):
            layers, blobs = _compact_layers(model, fp16)
        elif isinstance(model, BicubicPP):
            layers, blobs = _bicubic_pp_layers(model, fp16)
        else:
            arch = model_config(model).arch
            raise UserError(f"ncnn export writes merged {CompactSR.arch} and {BicubicPP.arch} nets, not {arch} "
                            "(merge it first)")
    names = {top for layer in layers for top in layer.tops}
    text = "\n".join([MAGIC, f"{len(layers)} {len(names)}", *(layer.line() for layer in layers)]) + "\n"
    return text, b"".join(blobs)


def parse_param(text: str, source: str) -> list[Layer]:
    """The layers of a ``.param`` text, or a one-line error naming the first line that is not one."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != MAGIC:
        head = lines[0].strip()[:40] if lines else "an empty file"
        raise UserError(f"{source}: not an ncnn .param file (it starts with '{head}', not the magic {MAGIC})")
    try:
        count = int(lines[1].split()[0])
        layers = [_parse_line(line) for line in lines[2:]]
    except (IndexError, ValueError):
        raise UserError(f"{source}: corrupt ncnn .param file (a layer line or the counts line is malformed)") from None
    if count != len(layers):
        raise UserError(f"{source}: corrupt ncnn .param file (it declares {count} layers and holds {len(layers)})")
    return layers


def _parse_line(line: str) -> Layer:
    kind, name, ins, outs, *rest = line.split()
    n_in, n_out = int(ins), int(outs)
    bottoms, tops, pairs = rest[:n_in], rest[n_in:n_in + n_out], rest[n_in + n_out:]
    if len(tops) != n_out:
        raise ValueError(line)
    params: dict[int, Param] = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        if int(key) <= -23300:
            values = value.split(",")
            params[-23300 - int(key)] = tuple(float(v) for v in values[1:])
        else:
            params[int(key)] = float(value) if any(c in value for c in ".eE") else int(value)
    return Layer(kind, name, tuple(bottoms), tuple(tops), params)


def _int(params: dict[int, Param], key: int, default: int | None = None) -> int:
    """Param ``key`` as an integer (``default`` when absent and given); an array there is a ``TypeError``."""
    value = params[key] if default is None else params.get(key, default)
    if isinstance(value, tuple):
        raise TypeError(f"ncnn param {key} is an array, not a number")
    return int(value)


def weight_arrays(layers: list[Layer]) -> list[tuple[Layer, int, bool]] | None:
    """``(layer, values, tagged)`` for every float array the ``.bin`` holds, in file order; None when a layer type
    that repsr cannot size is present (a foreign file with other weighted layers)."""
    arrays = []
    for layer in layers:
        if layer.kind == "Convolution" and not layer.params.get(8) and not layer.params.get(19):  # no int8, no
            arrays.append((layer, _int(layer.params, 6, 0), True))  # dynamic weights
            if layer.params.get(5):
                arrays.append((layer, _int(layer.params, 0, 0), False))
        elif layer.kind == "PReLU":
            arrays.append((layer, _int(layer.params, 0, 0), False))
        elif layer.kind not in WEIGHTLESS or (layer.kind == "Padding" and layer.params.get(6)):
            return None
    return arrays


def read_weights(layers: list[Layer], data: bytes, source: str) -> list[np.ndarray] | None:
    """Every weight array of ``data`` as float32 (fp16 ones widened), checking that the sizes add up exactly;
    None when :func:`weight_arrays` cannot size the file."""
    arrays = weight_arrays(layers)
    if arrays is None:
        return None
    out, at = [], 0
    for layer, count, tagged in arrays:
        fp16 = False
        if tagged:
            tag = struct.unpack_from("<I", data, at)[0] if at + 4 <= len(data) else None
            if tag not in (0, FP16_TAG):
                what = "ends" if tag is None else f"stores them as 0x{tag:08x}, which repsr does not read"
                raise UserError(f"{source}: the weights of {layer.name} are unreadable (the file {what})")
            fp16, at = tag == FP16_TAG, at + 4
        size = count * (2 if fp16 else 4)
        if at + size > len(data):
            raise UserError(f"{source}: truncated ncnn weights ({len(data):,} bytes; {layer.name} needs more)")
        out.append(np.frombuffer(data, "<f2" if fp16 else "<f4", count, at).astype(np.float32))
        at += size + (-size % 4)
    if at != len(data):
        raise UserError(f"{source}: {len(data):,} bytes of weights, but its .param needs {at:,} (a .bin of another "
                        "model?)")
    return out


def rounded_to_fp16(layers: list[Layer], data: bytes, source: str) -> bytes | None:
    """``data`` with every weight rounded to fp16 and stored as fp32: what a client with fp16 storage computes
    with, whichever way the file stores them; None when the file cannot be sized."""
    arrays, values = weight_arrays(layers), read_weights(layers, data, source)
    if arrays is None or values is None:
        return None
    chunks = []
    for (_, _, tagged), array in zip(arrays, values, strict=True):
        chunks.append((struct.pack("<I", 0) if tagged else b"") + array.astype(np.float16).astype("<f4").tobytes())
    return b"".join(chunks)


def config_of(layers: list[Layer]) -> ModelConfig | None:
    """The :class:`ModelConfig` of a file :func:`ncnn_model` wrote (always RGB), read from its layers; None for
    another graph. The facts tiling needs (scale, receptive radius, alignment) follow from it."""
    kinds = [layer.kind for layer in layers]
    convs = [layer.params for layer in layers if layer.kind == "Convolution"]
    shuffle = next((layer.params for layer in layers if layer.kind == "PixelShuffle"), None)
    if not convs or shuffle is None:
        return None
    first = convs[0]
    channels = _int(first, 0)
    in_channels = _int(first, 6) // (channels * _int(first, 1) * _int(first, 11, _int(first, 1)))
    compact = ["Input", "Split"] + ["Convolution", "PReLU"] * (len(convs) - 1) + [
        "Convolution", "PixelShuffle", "Interp", "BinaryOp"]
    if kinds == compact and len(convs) >= 2:
        return ModelConfig(arch=CompactSR.arch, scale=_int(shuffle, 0), blocks=len(convs) - 2, in_channels=in_channels,
                           channels=channels)
    bicubic_pp = ["Input", "Split", "Padding", "Pooling", "Interp", "Crop", "Convolution", "Split", "Convolution",
                  "Convolution", "BinaryOp", "Convolution", "PixelShuffle", "Interp", "Crop"]
    if kinds == bicubic_pp and _int(shuffle, 0) % 2 == 0:
        mid = _int(convs[1], 0)
        return ModelConfig(arch=BicubicPP.arch, scale=_int(shuffle, 0) // 2, bias=bool(first.get(5)),
                           mid_channels=None if mid == channels else mid, in_channels=in_channels, channels=channels)
    return None


def _replaceable(weights: Path, param: Path) -> bool:
    """Whether ``weights`` may be overwritten: absent, or the weights of the ncnn ``param`` beside it (sizes checked
    where repsr can size its layers)."""
    if not weights.exists():
        return True
    try:
        read_weights(parse_param(param.read_text(errors="replace"), str(param)), weights.read_bytes(), str(weights))
    except (OSError, UserError):
        return False
    return True


def export_ncnn(model: nn.Module, path: str | Path, precision: str = "fp32") -> list[str]:
    """Write ``path`` (.param) and the ``.bin`` beside it; returns the notes a user needs (channel order, sizes).

    The ``.bin`` is written first and the ``.param`` last, each atomically, so a ``.param`` is never seen
    beside weights of another version. A ``.bin`` that is not the weights of the ``.param`` being replaced
    (an OpenVINO IR's, say) is never overwritten: a one-line error instead.
    """
    path = Path(path)
    weights = path.with_suffix(".bin")
    if not _replaceable(weights, path):
        raise OutputError(f"{weights} exists and is not the weights of an ncnn {path.name}: not overwriting it "
                          "(choose another name or remove it)")
    config = model_config(model)
    text, data = ncnn_model(model, precision)
    atomic_write(weights, lambda tmp: Path(tmp).write_bytes(data))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    notes = [f"ncnn blobs: input 'data', output 'output'; RGB in [0, 1] -> [0, 1], any size, x{config.scale}; "
             f"{precision} weights"]
    if config.bgr:
        notes.append("these weights were trained on BGR images: the channel order is folded into the first and last "
                     "conv, so the file takes RGB like every ncnn client (do not swap channels in the client)")
    if isinstance(model, BicubicPP):
        notes.append("odd sizes are handled inside the file (one replicated row/column, output cropped to "
                     f"{config.scale}x the input), as the PyTorch model does")
    if not path.stem.endswith(f"-x{config.scale}"):
        notes.append(f"Upscayl's custom models folder expects <name>-x{config.scale}.param / .bin")
    return notes


def rgb_config(config: ModelConfig) -> ModelConfig:
    """``config`` as the ncnn file states it: RGB, the BGR order being folded into its weights."""
    return dataclasses.replace(config, bgr=False)
