"""Each algebra function equals running the unfused operations (float64, borders included)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repsr.bn import SwitchableBatchNorm2d
from repsr.reparam import kernel as K

TOL = 1e-10
SIZES = [(1, 1), (3, 5), (7, 6)]
CHANNELS = [(4, 4), (3, 6)]


def _conv(pair: K.KernelBias, x: torch.Tensor) -> torch.Tensor:
    kh, kw = pair.kernel.shape[-2:]
    return F.conv2d(x, pair.kernel, pair.bias, padding=(kh // 2, kw // 2))


def _random_bn(channels: int, gen: torch.Generator) -> SwitchableBatchNorm2d:
    bn = SwitchableBatchNorm2d(channels, eps=1e-3).double()
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(channels, generator=gen, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(channels, generator=gen, dtype=torch.float64) * 2 + 0.1)
        bn.weight.copy_(torch.randn(channels, generator=gen, dtype=torch.float64))
        bn.bias.copy_(torch.randn(channels, generator=gen, dtype=torch.float64))
    return bn.eval()


def _random_conv(cin: int, cout: int, k, gen: torch.Generator, bias: bool = True) -> nn.Conv2d:
    kh, kw = (k, k) if isinstance(k, int) else k
    conv = nn.Conv2d(cin, cout, (kh, kw), padding=(kh // 2, kw // 2), bias=bias).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64))
        if bias:
            conv.bias.copy_(torch.randn(cout, generator=gen, dtype=torch.float64))
    return conv


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_from_conv_and_fuse_bn_match_conv_then_bn(gen, size, cin, cout):
    conv, bn = _random_conv(cin, cout, 3, gen), _random_bn(cout, gen)
    x = torch.randn(2, cin, *size, generator=gen, dtype=torch.float64)
    fused = K.fuse_bn(K.from_conv(conv), bn)
    torch.testing.assert_close(_conv(fused, x), bn(conv(x)), atol=TOL, rtol=0)


def test_fuse_bn_matches_torch_fuse_conv_bn_eval(gen):
    conv, bn = _random_conv(5, 7, 3, gen).eval(), _random_bn(7, gen)
    reference = torch.nn.utils.fuse_conv_bn_eval(conv, bn)
    fused = K.fuse_bn(K.from_conv(conv), bn)
    torch.testing.assert_close(fused.kernel, reference.weight, atol=TOL, rtol=0)
    torch.testing.assert_close(fused.bias, reference.bias, atol=TOL, rtol=0)


def test_frozen_bn_in_train_mode_fuses_like_eval(gen):
    conv, bn = _random_conv(3, 4, 3, gen), _random_bn(4, gen)
    bn.frozen.fill_(True)
    bn.train()
    x = torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    before = bn.running_mean.clone()
    torch.testing.assert_close(_conv(K.fuse_bn(K.from_conv(conv), bn), x), bn(conv(x)), atol=TOL, rtol=0)
    assert torch.equal(bn.running_mean, before), "a frozen BN must not update its statistics"


@pytest.mark.parametrize("k", [1, 3, 5])
def test_identity_kernel_is_identity(gen, k):
    x = torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(_conv(K.identity(4, k, like=x), x), x, atol=0, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_bn_identity_branch_matches_bn(gen, size):
    bn = _random_bn(4, gen)
    x = torch.randn(2, 4, *size, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(_conv(K.fuse_bn(K.identity(4, 3, like=x), bn), x), bn(x), atol=TOL, rtol=0)


@pytest.mark.parametrize("k", [1, (3, 1), (1, 3), 3])
@pytest.mark.parametrize("size", SIZES)
def test_pad_to_keeps_output_at_borders(gen, k, size):
    conv = _random_conv(3, 4, k, gen)
    x = torch.randn(2, 3, *size, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(_conv(K.pad_to(K.from_conv(conv), 5), x), conv(x), atol=TOL, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_add_matches_sum_of_branches(gen, size):
    convs = [_random_conv(3, 4, k, gen) for k in (3, 1, (3, 1), (1, 3))]
    x = torch.randn(2, 3, *size, generator=gen, dtype=torch.float64)
    merged = K.add(*(K.from_conv(c) for c in convs))
    torch.testing.assert_close(_conv(merged, x), sum(c(x) for c in convs), atol=TOL, rtol=0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_compose_1x1_kxk_matches_sequential_convs_with_bias_padding(gen, size, cin, cout):
    first, second = _random_conv(cin, 6, 1, gen), _random_conv(6, cout, 3, gen)
    second.padding = (0, 0)
    x = torch.randn(2, cin, *size, generator=gen, dtype=torch.float64)
    reference = second(K.BiasPad(1)(first(x), first.bias))
    merged = K.compose_1x1_kxk(K.from_conv(first), K.from_conv(second))
    torch.testing.assert_close(_conv(merged, x), reference, atol=TOL, rtol=0)


def test_compose_1x1_kxk_with_zero_padding_differs_at_borders_only(gen):
    """The bias-padding rule is not optional: zero padding breaks exactly the border ring."""
    first, second = _random_conv(3, 6, 1, gen), _random_conv(6, 4, 3, gen)
    x = torch.randn(1, 3, 6, 6, generator=gen, dtype=torch.float64)
    merged = _conv(K.compose_1x1_kxk(K.from_conv(first), K.from_conv(second)), x)
    diff = (merged - second(first(x))).abs()
    assert diff[..., 1:-1, 1:-1].max() < TOL
    assert diff[..., 0, :].min() > 1e-6


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_compose_kxk_1x1_matches_sequential_convs(gen, size, cin, cout):
    first, second = _random_conv(cin, 8, 3, gen), _random_conv(8, cout, 1, gen)
    x = torch.randn(2, cin, *size, generator=gen, dtype=torch.float64)
    merged = K.compose_kxk_1x1(K.from_conv(first), K.from_conv(second))
    torch.testing.assert_close(_conv(merged, x), second(first(x)), atol=TOL, rtol=0)


@pytest.mark.parametrize("mask", [K.SOBEL_X, K.SOBEL_Y, K.LAPLACIAN])
@pytest.mark.parametrize("size", SIZES)
def test_fixed_mask_matches_depthwise_conv(gen, mask, size):
    scale = torch.randn(4, generator=gen, dtype=torch.float64)
    bias = torch.randn(4, generator=gen, dtype=torch.float64)
    x = torch.randn(2, 4, *size, generator=gen, dtype=torch.float64)
    weight = scale.reshape(-1, 1, 1, 1) * torch.tensor(mask, dtype=torch.float64)
    reference = F.conv2d(x, weight, bias, padding=1, groups=4)
    torch.testing.assert_close(_conv(K.fixed_mask(mask, scale, bias), x), reference, atol=TOL, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_avg_pool_kernel_matches_padded_pooling(gen, size):
    x = torch.randn(2, 4, *size, generator=gen, dtype=torch.float64)
    reference = F.avg_pool2d(F.pad(x, (1, 1, 1, 1)), 3, stride=1)
    torch.testing.assert_close(_conv(K.avg_pool(4, 3, like=x), x), reference, atol=TOL, rtol=0)


def test_grouped_conv_expands_to_dense(gen):
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=3).double()
    x = torch.randn(2, 6, 5, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(_conv(K.from_conv(conv), x), conv(x), atol=TOL, rtol=0)


def test_to_conv_copies_and_detaches(gen):
    pair = K.from_conv(_random_conv(3, 4, 3, gen))
    conv = K.to_conv(pair)
    x = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(conv(x), _conv(pair, x), atol=0, rtol=0)
    assert conv.weight.data_ptr() != pair.kernel.data_ptr()


def test_algebra_is_differentiable(gen):
    first, conv, bn = _random_conv(4, 4, 1, gen), _random_conv(4, 4, 3, gen), _random_bn(4, gen)
    pair = K.add(K.compose_1x1_kxk(K.from_conv(first), K.fuse_bn(K.from_conv(conv), bn)),
                 K.identity(4, 3, like=conv.weight))
    (pair.kernel.square().sum() + pair.bias.square().sum()).backward()
    for p in (first.weight, first.bias, conv.weight, conv.bias, bn.weight, bn.bias):
        assert p.grad is not None and p.grad.abs().sum() > 0
