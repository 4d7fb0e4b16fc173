"""Re-parameterization algebra on (kernel, bias) pairs.

Every training-time block in repsr is a sum and composition of linear maps that each reduce to one
convolution. This module holds those reductions as small pure functions on :class:`KernelBias`,
so a block's merge reads like the paper's equations. All functions are differentiable (the
equivalent kernel can be used inside a loss) and never modify their inputs.

Conventions: a kernel is ``(out_channels, in_channels, kh, kw)`` (dense, groups=1), a bias is
``(out_channels,)``; odd kernel sizes, stride 1, "same" zero padding of ``k // 2`` unless a
function's docstring says otherwise.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Fixed 3x3 masks of ECBSR's edge branches.
SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


class KernelBias(NamedTuple):
    """A convolution as data: ``y = conv2d(x, kernel, padding=k // 2) + bias``."""

    kernel: Tensor
    bias: Tensor

    def detach(self) -> KernelBias:
        return KernelBias(self.kernel.detach(), self.bias.detach())


def from_conv(conv: nn.Conv2d) -> KernelBias:
    """The pair of a stride-1 conv; grouped (e.g. depthwise) kernels are expanded to dense."""
    if conv.stride != (1, 1) or conv.dilation != (1, 1):
        raise ValueError("only stride-1, undilated convolutions can be re-parameterized")
    kernel = conv.weight
    if conv.groups > 1:
        kernel = grouped_to_dense(kernel, conv.groups)
    bias = conv.bias if conv.bias is not None else kernel.new_zeros(conv.out_channels)
    return KernelBias(kernel, bias)


def grouped_to_dense(kernel: Tensor, groups: int) -> Tensor:
    """Expand a grouped kernel ``(out, in/groups, kh, kw)`` to the block-diagonal dense kernel.

    Vectorised (one einsum with the ``groups x groups`` identity, no loop over groups): ECB's
    depthwise edge masks are rebuilt this way at every step of merged-kernel training.
    """
    out_ch, in_per_group, kh, kw = kernel.shape
    out_per_group = out_ch // groups
    blocks = kernel.reshape(groups, out_per_group, in_per_group, kh, kw)
    eye = torch.eye(groups, dtype=kernel.dtype, device=kernel.device)
    dense = torch.einsum("gh,goikl->gohikl", eye, blocks)
    return dense.reshape(out_ch, groups * in_per_group, kh, kw)


def fuse_bn(pair: KernelBias, bn: nn.BatchNorm2d) -> KernelBias:
    """Fold an inference-mode BatchNorm that follows ``pair``.

    ``bn(conv(x)) = g * (W*x + b - mu) / sqrt(var + eps) + beta``, so with ``t = g / sqrt(var + eps)``:
    ``W' = t W`` and ``b' = beta + t (b - mu)``. Uses the module's own running statistics and eps;
    exact wherever the BN itself runs on population statistics (eval mode or after the switch).
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm without running statistics cannot be fused")
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    t = gamma / std
    return KernelBias(pair.kernel * t.reshape(-1, 1, 1, 1), beta + t * (pair.bias - bn.running_mean))


def identity(channels: int, kernel_size: int = 3, *, like: Tensor) -> KernelBias:
    """The identity map ``y = x`` as a ``kernel_size`` kernel: a 1 at each channel's centre tap."""
    kernel = like.new_zeros(channels, channels, kernel_size, kernel_size)
    centre = kernel_size // 2
    idx = torch.arange(channels, device=like.device)
    kernel[idx, idx, centre, centre] = 1.0
    return KernelBias(kernel, like.new_zeros(channels))


def pad_to(pair: KernelBias, kernel_size: int) -> KernelBias:
    """Zero-pad a smaller (possibly non-square, e.g. 3x1) odd kernel to ``kernel_size`` squared.

    Exact including borders: a k1xk2 conv with padding (k1//2, k2//2) equals the centred,
    zero-padded KxK conv with padding K//2, because the extra taps only ever see zeros.
    """
    kh, kw = pair.kernel.shape[-2:]
    ph, pw = (kernel_size - kh) // 2, (kernel_size - kw) // 2
    if ph < 0 or pw < 0 or (kernel_size - kh) % 2 or (kernel_size - kw) % 2:
        raise ValueError(f"cannot centre a {kh}x{kw} kernel in {kernel_size}x{kernel_size}")
    return KernelBias(F.pad(pair.kernel, (pw, pw, ph, ph)), pair.bias)


def add(*pairs: KernelBias) -> KernelBias:
    """Parallel branches on the same input sum: kernels (padded to the largest size) and biases add."""
    size = max(p.kernel.shape[-1] for p in pairs)
    padded = [pad_to(p, size) for p in pairs]
    # typed Tensor | 0 by typeshed's sum(); a tensor here, as there is at least one pair
    return KernelBias(cast(Tensor, sum(p.kernel for p in padded)), cast(Tensor, sum(p.bias for p in padded)))


def compose_1x1_kxk(first: KernelBias, second: KernelBias) -> KernelBias:
    """A 1x1 conv (C -> D) followed by a kxk conv (D -> E) as one kxk conv (C -> E).

    ``W[e, c] = sum_d W2[e, d] W1[d, c]`` and ``b = b2 + sum_{d, taps} W2[e, d] b1[d]``.
    Border condition: exact only when the intermediate map is padded with ``b1`` (the first
    conv's effective bias, see :class:`BiasPad`), not with zeros -- with zero padding the border
    taps of the merged conv would wrongly add ``W2 b1``.
    """
    if first.kernel.shape[-2:] != (1, 1):
        raise ValueError("first conv of compose_1x1_kxk must be 1x1")
    w1 = first.kernel[:, :, 0, 0]  # (D, C)
    kernel = torch.einsum("edhw,dc->echw", second.kernel, w1)
    bias = second.bias + torch.einsum("edhw,d->e", second.kernel, first.bias)
    return KernelBias(kernel, bias)


def compose_kxk_1x1(first: KernelBias, second: KernelBias) -> KernelBias:
    """A kxk conv (C -> D) followed by a 1x1 conv (D -> E) as one kxk conv (C -> E).

    ``W[e, c] = sum_d W2[e, d] W1[d, c]`` and ``b = b2 + W2 b1``. Exact with ordinary zero padding:
    a 1x1 conv needs no padding, so no intermediate value is ever invented at the border.
    """
    if second.kernel.shape[-2:] != (1, 1):
        raise ValueError("second conv of compose_kxk_1x1 must be 1x1")
    w2 = second.kernel[:, :, 0, 0]  # (E, D)
    kernel = torch.einsum("ed,dchw->echw", w2, first.kernel)
    return KernelBias(kernel, second.bias + w2 @ first.bias)


def fixed_mask(mask: tuple[tuple[float, ...], ...], scale: Tensor, bias: Tensor) -> KernelBias:
    """A depthwise conv with a fixed mask and learnable per-channel scale, as a dense kernel.

    ``y_c = scale_c * (mask * x_c) + bias_c``; ``scale`` and ``bias`` have shape ``(C,)``.
    """
    m = torch.tensor(mask, dtype=scale.dtype, device=scale.device)
    depthwise = scale.reshape(-1, 1, 1, 1) * m  # (C, 1, k, k)
    return KernelBias(grouped_to_dense(depthwise, scale.numel()), bias)


def avg_pool(channels: int, kernel_size: int, *, like: Tensor) -> KernelBias:
    """``AvgPool2d(k, stride=1)`` applied per channel as a dense kernel of ``1 / k^2`` taps.

    Border condition: equals the pooling when the input is padded beforehand (so the pool sees
    ``k^2`` values everywhere, as with ``count_include_pad=True``).
    """
    kernel = like.new_zeros(channels, channels, kernel_size, kernel_size)
    idx = torch.arange(channels, device=like.device)
    kernel[idx, idx] = 1.0 / kernel_size**2
    return KernelBias(kernel, like.new_zeros(channels))


def to_conv(pair: KernelBias) -> nn.Conv2d:
    """A new ``nn.Conv2d`` holding a detached copy of the pair (same dtype and device)."""
    out_ch, in_ch, kh, kw = pair.kernel.shape
    conv = nn.Conv2d(in_ch, out_ch, (kh, kw), padding=(kh // 2, kw // 2), bias=True)
    conv = conv.to(device=pair.kernel.device, dtype=pair.kernel.dtype)
    assert conv.bias is not None  # built with bias=True
    with torch.no_grad():
        conv.weight.copy_(pair.kernel.detach())
        conv.bias.copy_(pair.bias.detach())
    return conv


class BiasPad(nn.Module):
    """Pad a feature map by ``p`` pixels per side with a per-channel value instead of zero.

    Used between a 1x1 and a kxk convolution: padding with the 1x1's effective bias ``b1`` makes
    the pair equal, at the borders too, to the merged kxk conv applied to the zero-padded input
    (see :func:`compose_1x1_kxk`). The kxk conv after it must then use ``padding=0``.
    """

    def __init__(self, padding: int = 1) -> None:
        super().__init__()
        self.padding = padding

    def forward(self, x: Tensor, value: Tensor) -> Tensor:
        pads = (self.padding,) * 4
        # interior pixels stay bit-identical; only the new border ring gets the value
        border = 1.0 - F.pad(x.new_ones(1, 1, *x.shape[-2:]), pads)
        return F.pad(x, pads) + border * value.reshape(1, -1, 1, 1).to(x.dtype)
