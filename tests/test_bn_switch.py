"""The BN switch: exact cumulative re-estimation, freezing that survives train(), frozen affine params."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from repsr.bn import SwitchableBatchNorm2d, is_bn_frozen
from repsr.models import create_model
from repsr.train.bn_switch import recalibrate_bn, switch_bn
from repsr.train.sync_bn import SyncSwitchableBatchNorm2d, convert_sync_switchable_bn


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is fastest and immune to busy cores
    yield
    torch.set_num_threads(before)


def batches(n: int = 4, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 5, 6, 7, generator=gen) * (i + 1) + i for i in range(n)]


def test_recalibration_is_the_cumulative_average_of_batch_statistics():
    bn = SwitchableBatchNorm2d(5)
    bn.running_mean.fill_(7.0)  # stale statistics must be discarded, not blended
    data = batches()
    recalibrate_bn(nn.Sequential(bn), data)
    means = torch.stack([x.double().mean((0, 2, 3)) for x in data])
    varis = torch.stack([x.double().transpose(0, 1).reshape(5, -1).var(1, unbiased=True) for x in data])
    torch.testing.assert_close(bn.running_mean.double(), means.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_var.double(), varis.mean(0), atol=1e-4, rtol=1e-5)
    assert bn.momentum == 0.1 and not bool(bn.frozen)


def test_switch_freezes_statistics_through_train_calls_and_steps():
    model = create_model("repsr", scale=2, blocks=1, channels=4, zero_init_tail=False)
    assert switch_bn(model, [torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)]) > 0
    assert is_bn_frozen(model)
    stats = [t.clone() for n, t in model.state_dict().items() if "running" in n]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(3):
        opt.zero_grad()
        model(torch.rand(2, 3, 8, 8)).mean().backward()
        opt.step()
    after = [t for n, t in model.state_dict().items() if "running" in n]
    assert all(torch.equal(a, b) for a, b in zip(stats, after, strict=True))
    # BN is now a fixed affine map: the same output in train and eval mode.
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.train()(x), model.eval()(x))


def test_frozen_affine_option_stops_gamma_and_beta():
    model = create_model("repvgg", scale=2, blocks=1, channels=4, zero_init_tail=False)
    switch_bn(model, [torch.rand(2, 3, 8, 8)], freeze_affine=True)
    bns = [m for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]
    assert bns and all(not m.weight.requires_grad and not m.bias.requires_grad for m in bns)
    bn_params = {id(p) for m in bns for p in m.parameters()}
    others = [p for p in model.parameters() if id(p) not in bn_params]
    assert others and all(p.requires_grad for p in others)


def test_bn_free_family_is_left_untouched():
    model = create_model("ecbsr", scale=2, blocks=1, channels=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert switch_bn(model, [torch.rand(1, 3, 8, 8)]) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sync_conversion_keeps_the_frozen_flag_and_state():
    model = create_model("repsr", scale=2, blocks=1, channels=4, zero_init_tail=False)
    switch_bn(model, [torch.rand(2, 3, 8, 8)])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    convert_sync_switchable_bn(model)
    assert any(isinstance(m, SyncSwitchableBatchNorm2d) for m in model.modules())
    assert is_bn_frozen(model)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    # Without a process group the synced layer is an ordinary switchable BN.
    x = torch.rand(2, 4, 5, 5)
    ref, synced = SwitchableBatchNorm2d(4).train(), SyncSwitchableBatchNorm2d(4).train()
    torch.testing.assert_close(synced(x), ref(x))
    torch.testing.assert_close(synced.running_var, ref.running_var)


def test_switch_without_batches_freezes_running_averages_unchanged():
    model = create_model("plain_bn", scale=2, blocks=1, channels=4).train()
    with torch.no_grad():
        model(torch.rand(2, 3, 8, 8) * 3)  # one EMA update: running stats now differ from the defaults
    before = {n: t.clone() for n, t in model.state_dict().items() if "running" in n}
    assert switch_bn(model, None) > 0 and is_bn_frozen(model)
    assert all(torch.equal(t, before[n]) for n, t in model.state_dict().items() if "running" in n)
