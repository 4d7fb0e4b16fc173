"""Every training-time block merges exactly into one 3x3 conv, in every mode that allows it."""

from __future__ import annotations

import zlib

import pytest
import torch
from helpers import randomize
from torch import nn

from repsr.bn import SwitchableBatchNorm2d, freeze_bn
from repsr.config import ModelConfig
from repsr.models import FAMILIES

BLOCKS = {name: f.block for name, f in FAMILIES.items() if f.block is not None}  # the VGG-style families
ARCHS = sorted(BLOCKS)
BN_FREE = {"ecbsr", "plain"}


def make_block(arch: str, cin: int, cout: int, **options) -> nn.Module:
    block = BLOCKS[arch](cin, cout, ModelConfig(arch=arch, **options)).double()
    return randomize(block, seed=zlib.crc32(f"{arch}/{cin}/{cout}".encode()) % 1000)  # hash() is salted per process


def _inputs(cin: int, size: tuple[int, int]) -> torch.Tensor:
    return torch.randn(2, cin, *size, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cin,cout", [(6, 6), (3, 8), (8, 12)])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (7, 6)])
def test_fused_block_matches_eval_mode_block_at_borders(arch, cin, cout, size):
    block = make_block(arch, cin, cout).eval()
    x = _inputs(cin, size)
    fused = block.fuse()
    assert isinstance(fused, nn.Conv2d) and fused.kernel_size == (3, 3)
    torch.testing.assert_close(fused(x), block(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_fused_block_matches_train_mode_after_bn_switch(arch):
    block = make_block(arch, 6, 6).train()
    freeze_bn(block)
    block.train()  # the classic pitfall: train() must not re-enable batch statistics
    x = _inputs(6, (5, 4))
    torch.testing.assert_close(block.fuse()(x), block(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch", sorted(BN_FREE))
def test_bn_free_blocks_match_in_train_mode_without_switch(arch):
    block = make_block(arch, 5, 7).train()
    x = _inputs(5, (4, 6))
    torch.testing.assert_close(block.fuse()(x), block(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch", sorted(set(ARCHS) - BN_FREE))
def test_bn_blocks_use_batch_statistics_before_switch(arch):
    block = make_block(arch, 6, 6).train()
    x = _inputs(6, (5, 5))
    assert (block.fuse()(x) - block(x)).abs().max() > 1e-6


@pytest.mark.parametrize("arch", ARCHS)
def test_fuse_leaves_block_untouched(arch):
    block = make_block(arch, 6, 6).eval()
    before = {k: v.clone() for k, v in block.state_dict().items()}
    block.fuse()
    after = block.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_every_branch(arch):
    block = make_block(arch, 6, 6).train()
    block(_inputs(6, (6, 6))).square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("arch", ARCHS)
def test_equivalent_kernel_is_differentiable(arch):
    block = make_block(arch, 6, 6).eval()
    pair = block.equivalent_kernel_bias()
    (pair.kernel.square().sum() + pair.bias.sum()).backward()
    for name, p in block.named_parameters():
        assert p.grad is not None, name


@pytest.mark.parametrize(
    "options",
    [dict(paths=1), dict(paths=3, expand_ratio=4), dict(identity=False), dict(bn_after_squeeze=True)],
)
def test_repsr_block_options_merge_exactly(options):
    block = make_block("repsr", 6, 6, **options).eval()
    x = _inputs(6, (3, 5))
    torch.testing.assert_close(block.fuse()(x), block(x), atol=1e-10, rtol=0)


def test_repsr_block_structure_follows_paper():
    block = BLOCKS["repsr"](16, 16, ModelConfig())
    assert len(block.paths) == 2 and block.has_identity
    path = block.paths[0]
    assert path.expand.kernel_size == (3, 3) and path.expand.out_channels == 32
    assert isinstance(path.expand_bn, SwitchableBatchNorm2d)
    assert path.squeeze.kernel_size == (1, 1) and path.squeeze.out_channels == 16
    assert not BLOCKS["repsr"](3, 16, ModelConfig()).has_identity


def test_dbb_one_by_one_then_three_starts_its_one_by_one_as_the_identity():
    """DBB's published init: the 1x1 of the 1x1 -> 3x3 branch is identity + a zero-initialised delta."""
    from repsr.blocks import DBBlock

    block = DBBlock(6, 6)
    first = block.pointwise_square.first
    assert not first.delta.any()
    x = torch.rand(2, 6, 5, 4)
    torch.testing.assert_close(torch.nn.functional.conv2d(x, first.delta + first.eye), x)
    assert "pointwise_square.first.eye" not in block.state_dict()  # a constant, not a weight
