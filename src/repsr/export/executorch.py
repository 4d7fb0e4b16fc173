"""ExecuTorch export: a merged net as a ``.pte`` program with the XNNPACK delegate (Android and iOS apps).

Why ExecuTorch for the mobile runtime (and not LiteRT): it is PyTorch's own, so the file comes from the
same ``torch.export`` graph with no ONNX or TensorFlow step; its wheel installs beside the pinned torch
without replacing it, and carries the runtime (pybindings with XNNPACK, the CPU library Android and iOS
apps use), so the very file an app ships is run and scored here. LiteRT's converter pulls JAX and
transformers as well.

Interface: method ``forward`` takes one (1, 3, H, W) float32 RGB tensor in [0, 1] and returns (1, 3, sH,
sW) float32 RGB, not clamped, the ONNX file's convention; a BGR-trained net's order is reversed inside, so
every file is RGB. Method ``repsr_metadata`` returns a uint8 tensor holding JSON: the model config (RGB),
the size bounds and the precision, so the file describes itself as ONNX metadata does.

Sizes: H and W are dynamic up to :data:`MAX_SIDE` (Bicubic++: even sides only; its stride-2 first conv
needs them, and ``torch.export`` cannot prove the module's odd-size padding for every size, so the runner
pads an odd side by one replicated row or column, as the module does). ExecuTorch plans activation memory
for the largest shape (the export notes say how much) and does not check the bounds when it runs: here an
input beyond the bound ran without an error, on memory planned for smaller ones, and an odd side gave a wrong
output size, so an app must tile to the bound, as :class:`repsr.inference.engines.executorch.ExecutorchUpscaler`
does.

Graph: the nearest-neighbour global skip ``PS(body(x)) + up(x)`` is written ``PS(body(x) + R x)``, ``R`` a
1x1 conv copying each colour ``s^2`` times (weights 0 and 1: exact in fp32 and fp16), because XNNPACK has
no nearest upsampling: left to ExecuTorch's portable kernel it doubled the time per frame (77 vs 39 ms for
a 320x180 x4 frame, one thread).

Precision: ``fp32``, or ``fp16`` (weights and activations fp16 in XNNPACK, input and output float32): the
arithmetic ARMv8.2 phones run natively, and x86 CPUs with AVX512-FP16 (like this project's machine).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repsr.atomic import atomic_write
from repsr.errors import UserError
from repsr.export.quiet import quiet
from repsr.models import BicubicPP, CompactSR, declared_facts, model_config

PRECISIONS = ("fp32", "fp16")
MAX_SIDE = 512  # input pixels per side; the planned activation memory grows with its square (x4: ~100 MB)
METADATA = "repsr_metadata"


class CompactForward(nn.Module):
    """A merged Compact net with its global skip folded into the pixel shuffle's input (module docstring)."""

    copy: Tensor  # (in * s^2, in, 1, 1): repeats each input colour onto its s^2 shuffle positions

    def __init__(self, model: CompactSR) -> None:
        super().__init__()
        config = model.config
        self.body, self.scale = model.body, config.scale
        groups = config.scale**2
        copy = torch.zeros(config.in_channels * groups, config.in_channels, 1, 1)
        for c in range(config.in_channels):  # pixel shuffle input channel c * s^2 + k is colour c's k-th position
            copy[c * groups:(c + 1) * groups, c] = 1.0
        self.register_buffer("copy", copy)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for layer in self.body:
            y = layer(y)
        return F.pixel_shuffle(y + F.conv2d(x, self.copy), self.scale)


class MobileForward(nn.Module):
    """``net`` as the file computes it: RGB in and out (a BGR net's order reversed inside), in ``dtype``
    inside and float32 outside."""

    def __init__(self, net: nn.Module, bgr: bool, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.bgr, self.dtype = net.to(dtype), bgr, dtype

    def forward(self, x: Tensor) -> Tensor:
        x = x.flip(1) if self.bgr else x
        y: Tensor = self.net(x.to(self.dtype)).float()
        return y.flip(1) if self.bgr else y


def _net(model: nn.Module) -> nn.Module:
    if isinstance(model, CompactSR):
        return CompactForward(model)
    if isinstance(model, BicubicPP):
        return model
    arch = model_config(model).arch
    raise UserError(f"ExecuTorch export writes merged {CompactSR.arch} and {BicubicPP.arch} nets, not {arch} "
                    "(merge it first)")


def executorch_program(model: nn.Module, precision: str = "fp32") -> tuple[bytes, int]:
    """``(.pte bytes, planned activation bytes)`` of a merged Compact or Bicubic++ net."""
    if precision not in PRECISIONS:
        raise UserError(f"ExecuTorch files store {' or '.join(PRECISIONS)} weights, not {precision}")
    config = model_config(model)
    if config.in_channels != 3:
        raise UserError(f"ExecuTorch export writes RGB nets, not {config.in_channels}-channel ones")
    with quiet():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    dtype = torch.float16 if precision == "fp16" else torch.float32
    net = MobileForward(_net(copy.deepcopy(model).eval().float().cpu()), bool(config.bgr), dtype).eval()
    align = declared_facts(config)[1]
    dim = torch.export.Dim
    if align > 1:  # sides that are multiples of the alignment: align * k, k >= 1
        h, w = dim("h", min=1, max=MAX_SIDE // align), dim("w", min=1, max=MAX_SIDE // align)
        sizes = {2: align * h, 3: align * w}
    else:
        sizes = {2: dim("h", min=1, max=MAX_SIDE), 3: dim("w", min=1, max=MAX_SIDE)}
    example = torch.rand(1, 3, 18 * align, 22 * align)
    rgb = dataclasses.replace(config, bgr=False)  # the file's own interface: RGB
    metadata = {"config": rgb.to_json(), "max_side": MAX_SIDE, "align": align, "precision": precision}
    blob = torch.tensor(list(json.dumps(metadata).encode()), dtype=torch.uint8)
    with quiet(), torch.no_grad():
        program = torch.export.export(net, (example,), dynamic_shapes=(sizes,))
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                              constant_methods={METADATA: blob}).to_executorch()
    planned = sum(sum(plan.non_const_buffer_sizes) for plan in lowered.executorch_program.execution_plan)
    return bytes(lowered.buffer), planned


def export_executorch(model: nn.Module, path: str | Path, precision: str = "fp32") -> list[str]:
    """Write ``path`` (.pte) atomically; returns the notes a user needs (interface, bounds, memory)."""
    data, planned = executorch_program(model, precision)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    config = model_config(model)
    align = declared_facts(config)[1]
    sides = f"1..{MAX_SIDE}" if align == 1 else f"even, 2..{MAX_SIDE} (pad an odd side by one replicated row/column)"
    notes = [f"ExecuTorch program, XNNPACK delegate: forward(1x3xHxW float32 RGB in [0, 1]) -> 1x3x{config.scale}Hx"
             f"{config.scale}W, not clamped; {precision}",
             f"H and W: {sides}; ExecuTorch does not check the bounds, so tile larger images "
             f"({planned / 2**20:.0f} MiB of activation memory planned for the largest input)"]
    if config.bgr:
        notes.append("these weights were trained on BGR images: the file reverses the order inside, so it takes "
                     "RGB (do not swap channels in the app)")
    return notes
