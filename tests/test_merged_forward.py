"""Merged-kernel training: the single-conv forward is the branch forward, value and gradient alike."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import randomize

import repsr
from repsr.bn import batchnorm_layers
from repsr.models import FAMILIES
from repsr.reparam.base import RepBlock, branch_forward, set_merged_forward
from repsr.train.bn_switch import switch_bn

ARCHS = sorted(name for name, f in FAMILIES.items() if f.block is not None)  # the VGG-style families
BN_FREE = {"ecbsr", "plain"}


def _net(arch: str, scale: int, dtype=torch.float64, blocks: int = 2, channels: int = 8) -> torch.nn.Module:
    torch.manual_seed(scale)
    model = repsr.create_model(arch, scale=scale, blocks=blocks, channels=channels).to(dtype)
    return randomize(model, seed=scale).train()


def _batch(scale: int, size=(7, 5), dtype=torch.float64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lr = torch.rand(2, 3, *size, generator=gen, dtype=dtype)
    hr = torch.rand(2, 3, size[0] * scale, size[1] * scale, generator=gen, dtype=dtype)
    return lr, hr


def _loss_and_grads(model: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor, merged: bool):
    set_merged_forward(model, merged)
    model.zero_grad(set_to_none=True)
    loss = F.l1_loss(model(lr), hr)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_merged_forward_gives_the_branch_loss_and_every_gradient_float64(arch, scale):
    model = _net(arch, scale)
    if arch not in BN_FREE:
        repsr.freeze_bn(model)  # after RepSR's switch every BN family is linear
    lr, hr = _batch(scale)  # 7x5: the border ring is most of the image (ECB's and DBB's bias padding)
    loss_b, grads_b = _loss_and_grads(model, lr, hr, merged=False)
    loss_m, grads_m = _loss_and_grads(model, lr, hr, merged=True)
    torch.testing.assert_close(loss_m, loss_b, atol=1e-12, rtol=0)
    assert grads_m.keys() == {n for n, p in model.named_parameters() if p.requires_grad}
    assert grads_m.keys() == grads_b.keys()
    for name in grads_b:
        torch.testing.assert_close(grads_m[name], grads_b[name], atol=1e-10, rtol=1e-10, msg=name)


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_forward_gradients_match_float32_within_relative_tolerance(arch):
    model = _net(arch, 4, dtype=torch.float32, blocks=4, channels=16)
    if arch not in BN_FREE:
        repsr.freeze_bn(model)
    lr, hr = _batch(4, size=(13, 11), dtype=torch.float32)
    loss_b, grads_b = _loss_and_grads(model, lr, hr, merged=False)
    loss_m, grads_m = _loss_and_grads(model, lr, hr, merged=True)
    assert abs(loss_m - loss_b) / loss_b < 1e-5
    # relative to the largest gradient: a PReLU slope whose inputs are all positive has an exact zero
    # gradient in one forward and float32 rounding noise (pre-activations of -1e-8) in the other
    scale = max(g.abs().max() for g in grads_b.values())
    for name, g in grads_b.items():
        assert (grads_m[name] - g).abs().max() <= 1e-5 * scale, name


@pytest.mark.parametrize("arch", sorted(set(ARCHS) - BN_FREE))
def test_blocks_with_batch_statistics_keep_their_branches(arch):
    """Before the switch a BN block is not linear: merged forward must not change output or statistics."""
    merged_model = _net(arch, 2)
    branch_model = _net(arch, 2)
    set_merged_forward(merged_model, True)
    assert not any(b.is_linear() for b in merged_model.modules() if isinstance(b, RepBlock))
    lr, _ = _batch(2)
    torch.testing.assert_close(merged_model(lr), branch_model(lr), atol=0, rtol=0)
    for a, b in zip(batchnorm_layers(merged_model), batchnorm_layers(branch_model), strict=True):
        torch.testing.assert_close(a.running_mean, b.running_mean, atol=0, rtol=0)
        torch.testing.assert_close(a.running_var, b.running_var, atol=0, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_training_with_merged_forward_reaches_the_same_weights_float64(arch):
    """Six Adam steps with the BN switch after the third: merged on and off end at the same weights."""
    runs = []
    for merged in (False, True):
        model = _net(arch, 2)
        set_merged_forward(model, merged)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(6):
            if step == 3:
                switch_bn(model, [_batch(2, seed=100 + k)[0] for k in range(2)])
            lr, hr = _batch(2, seed=step)
            opt.zero_grad(set_to_none=True)
            F.l1_loss(model(lr), hr).backward()
            opt.step()
        runs.append(model.state_dict())
    for name, value in runs[0].items():
        # ECB's edge branches: the 1x1's bias meets a zero-sum mask, so its true gradient is exactly 0.
        # The merged forward gets that 0; the branch forward gets 1e-16 noise, which Adam's
        # normalisation turns into steps of ~lr * 1e-8. Everything else agrees to rounding.
        dead = arch == "ecbsr" and name.endswith(("sobel_x.pointwise.bias", "sobel_y.pointwise.bias",
                                                  "laplacian.pointwise.bias"))
        tol = 1e-8 if dead else 1e-10
        torch.testing.assert_close(runs[1][name], value, atol=tol, rtol=0, msg=name)


def test_branch_forward_restores_each_blocks_setting():
    model = _net("ecbsr", 2)
    set_merged_forward(model, True)
    model.tail.merged_forward = False
    with branch_forward(model):
        assert not any(b.merged_forward for b in model.modules() if isinstance(b, RepBlock))
    assert model.head.merged_forward and not model.tail.merged_forward


def test_merged_forward_under_bf16_autocast_stays_close_to_float32():
    """bf16 rounds the conv's inputs, never the composed kernel: the output moves by bf16 epsilon only."""
    model = _net("ecbsr", 4, dtype=torch.float32, blocks=2, channels=8).eval()
    set_merged_forward(model, True)
    lr, _ = _batch(4, size=(16, 16), dtype=torch.float32)
    with torch.no_grad():
        ref = model(lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(lr)
    assert ((out.float() - ref).abs().max() / ref.abs().max()).item() < 0.05
