"""Data-driven cross-layer range equalization of a merged VGG-style net, before INT8 quantization.

Why: INT8 activations get *one* scale per tensor, but a merged re-parameterized net's channels do
not share a range. In the shipped M4C16 nets the identity paths let features grow with depth: the
last body layer's 16 channels reach 6 to 82 on training crops, so a per-tensor uint8 step of
82/255 leaves the small channels a dozen levels (measured: -0.68 dB on Set5 at x2, almost all
from activations; int8 per-channel weights alone cost 0.03 dB).

The fix is exact in float (Nagel et al. 2019, "Data-free quantization", here with ranges measured
on calibration data): for positive ``s_c``, ``prelu_c(s_c * z) = s_c * prelu_c(z)`` (a per-channel
PReLU, like LeakyReLU, is positively homogeneous), so multiplying output channel ``c`` of conv
``i`` (kernel and bias) by ``s_c`` and input channel ``c`` of conv ``i + 1`` by ``1 / s_c`` leaves
the network's function unchanged. Choosing ``s_c = mean(r) / r_c`` (``r_c`` = channel ``c``'s
largest |activation| on the calibration batch) gives every channel the same range, so a
per-tensor scale fits all of them. The price is a wider spread of the *next* conv's input-channel
weights, which per-output-channel weight quantization absorbs at a far smaller cost.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from repsr.models import CompactSR


def _chain(model: nn.Module) -> list[nn.Conv2d] | None:
    """The convs of a plain conv -> PReLU -> conv ... chain (a merged ``compact`` net), else None."""
    if not isinstance(model, CompactSR):
        return None
    layers = list(model.body)
    convs = [c for c in layers[0::2] if isinstance(c, nn.Conv2d)]
    if len(convs) != len(layers[0::2]) or not all(isinstance(a, nn.PReLU) for a in layers[1::2]):
        return None
    return convs


def scale_channels(conv: nn.Conv2d, following: nn.Conv2d, scale: Tensor) -> None:
    """Multiply ``conv``'s output channels by ``scale`` (> 0) and ``following``'s inputs by ``1 / scale``.

    Exact for any positively homogeneous activation between the two (ReLU, LeakyReLU, PReLU).
    """
    with torch.no_grad():
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        if conv.bias is not None:
            conv.bias.mul_(scale)
        following.weight.div_(scale.view(1, -1, 1, 1))


@torch.no_grad()
def equalize_ranges(model: nn.Module, batch: Tensor) -> nn.Module:
    """A copy of ``model`` whose hidden channels share one range on ``batch``; same outputs.

    ``batch`` is model input (N, C, H, W). Nets that are not a merged conv/PReLU chain (Bicubic++,
    training graphs) are returned as an unchanged copy.
    """
    model = copy.deepcopy(model).eval()
    convs = _chain(model)
    if convs is None:
        return model
    ranges: list[Tensor] = []
    hooks = [c.register_forward_hook(lambda _m, _i, out: ranges.append(out.abs().amax(dim=(0, 2, 3))))
             for c in convs[:-1]]
    model(batch.to(next(model.parameters())))
    for h in hooks:
        h.remove()
    for conv, following, r in zip(convs[:-1], convs[1:], ranges, strict=True):
        r = r.clamp_min(1e-6)  # a dead channel keeps its (zero) weights; avoid dividing by zero
        scale_channels(conv, following, r.mean() / r)
    return model


__all__ = ["equalize_ranges", "scale_channels"]
