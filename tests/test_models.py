"""Whole-model merge, the deploy layout, and weights I/O round trips."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import randomize

import repsr
from repsr.bn import SwitchableBatchNorm2d
from repsr.errors import WeightsError
from repsr.models import FAMILIES, PRESETS, CompactSR, parse_preset
from repsr.reparam.base import RepBlock
from repsr.weights import load_state, save_compact_pth

BLOCKS = {name: f.block for name, f in FAMILIES.items() if f.block is not None}  # the VGG-style families
ARCHS = sorted(BLOCKS)


def _net(arch: str, scale: int, blocks: int = 2, channels: int = 8, dtype=torch.float64):
    torch.manual_seed(0)
    return randomize(repsr.create_model(arch, scale=scale, blocks=blocks, channels=channels).to(dtype), seed=scale)


def _x(size=(7, 6), dtype=torch.float64):
    return torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(3), dtype=dtype)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_merged_net_matches_eval_training_graph_float64(arch, scale):
    model = _net(arch, scale).eval()
    merged = repsr.reparameterize(model)
    assert isinstance(merged, CompactSR)
    x = _x()
    out = merged(x)
    assert out.shape == (2, 3, 7 * scale, 6 * scale)
    torch.testing.assert_close(out, model(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_net_matches_float32_within_relative_tolerance(arch):
    model = _net(arch, 4, blocks=4, channels=16, dtype=torch.float32).eval()
    x = _x((13, 11), torch.float32)
    ref, out = model(x), repsr.reparameterize(model)(x)
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 1e-5


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_net_matches_train_mode_after_freeze_bn(arch):
    model = _net(arch, 3).train()
    repsr.freeze_bn(model)
    model.train()
    x = _x((5, 5))
    torch.testing.assert_close(repsr.reparameterize(model)(x), model(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_every_parameter_of_the_training_graph(arch):
    model = _net(arch, 2).train()
    model(_x((6, 6))).abs().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_reparameterize_copies_and_leaves_original_untouched():
    model = _net("repsr", 4).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    merged = repsr.reparameterize(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, RepBlock) for m in model.modules())
    assert not any(isinstance(m, (RepBlock, SwitchableBatchNorm2d)) for m in merged.modules())


def test_compact_layout_matches_srvggnetcompact():
    merged = repsr.reparameterize(repsr.create_model("repsr", scale=4, blocks=4, channels=16))
    state = merged.state_dict()
    assert len(state) == 17
    assert state["body.0.weight"].shape == (16, 3, 3, 3)
    assert state["body.1.weight"].shape == (16,)
    assert state["body.10.weight"].shape == (48, 16, 3, 3) and state["body.10.bias"].shape == (48,)
    assert not any(k.startswith("body") for k in repsr.create_model("repsr", scale=4).state_dict())


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("scale", [2, 4])
def test_merged_parameter_counts_follow_the_formula(preset, scale):
    m, c = parse_preset(preset)
    assert PRESETS[preset] == (m, c)
    out = 3 * scale * scale
    # head conv + PReLU, M x (conv + PReLU), tail conv; every conv 3x3 with bias
    expected = (27 * c + c) + c + m * (9 * c * c + c + c) + (9 * c * out + out)
    merged = repsr.reparameterize(repsr.create_model("repsr", scale=scale, blocks=m, channels=c))
    assert sum(p.numel() for p in merged.parameters()) == expected


def test_generic_reparameterize_swaps_blocks_in_other_models():
    block = BLOCKS["dbb"](4, 4, repsr.ModelConfig()).double()
    net = torch.nn.Sequential(randomize(block), torch.nn.ReLU()).eval()
    merged = repsr.reparameterize(net)
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(merged(x), net(x), atol=1e-10, rtol=0)
    assert isinstance(net[0], RepBlock), "inplace=False must not touch the source"


def test_a_vgg_net_inside_another_module_merges_into_its_own_compact_layout():
    inner = _net("repsr", 2)
    net = torch.nn.Sequential(inner, torch.nn.Identity()).eval()
    merged = repsr.reparameterize(net)
    assert isinstance(merged[0], CompactSR), "the model's own fuse() decides its deploy layout"
    x = torch.randn(1, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(merged(x), net(x), atol=1e-10, rtol=0)
    assert net[0] is inner, "inplace=False must not touch the source"


@pytest.mark.parametrize("arch", ["repsr", "ecbsr", "dbb"])
def test_weights_round_trip_rebuilds_training_and_merged_models(tmp_path, arch):
    model = _net(arch, 3, dtype=torch.float32).eval()
    merged = repsr.reparameterize(model)
    repsr.save_model(model, tmp_path / "train.safetensors")
    repsr.save_model(merged, tmp_path / "merged.safetensors")
    x = _x(dtype=torch.float32)
    loaded = repsr.load_model(tmp_path / "train.safetensors")
    assert loaded.config == model.config
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    torch.testing.assert_close(repsr.load_model(tmp_path / "merged.safetensors")(x), merged(x), atol=0, rtol=0)


def test_frozen_bn_state_survives_save_and_load(tmp_path):
    model = _net("repsr", 2, dtype=torch.float32)
    repsr.freeze_bn(model)
    repsr.save_model(model, tmp_path / "m.safetensors")
    loaded = repsr.load_model(tmp_path / "m.safetensors").train()
    assert all(bool(m.frozen) for m in loaded.modules() if isinstance(m, SwitchableBatchNorm2d))


def test_compact_pth_round_trips_through_load_model(tmp_path):
    merged = repsr.reparameterize(_net("repsr", 4, dtype=torch.float32).eval())
    save_compact_pth(merged, tmp_path / "m.pth")
    config, state, _ = load_state(tmp_path / "m.pth")
    assert (config.arch, config.scale, config.blocks, config.channels) == ("compact", 4, 2, 8)
    torch.testing.assert_close(repsr.load_model(tmp_path / "m.pth")(_x(dtype=torch.float32)),
                               merged(_x(dtype=torch.float32)), atol=0, rtol=0)


def test_bad_weights_files_raise_one_line_errors(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    (tmp_path / "junk.pth").write_bytes(b"garbage")
    (tmp_path / "m.onnx").write_bytes(b"x")
    for name in ("junk.safetensors", "junk.pth", "m.onnx", "missing.safetensors"):
        with pytest.raises(WeightsError) as info:
            repsr.load_model(tmp_path / name)
        assert "\n" not in str(info.value)


def test_mismatched_weights_are_rejected(tmp_path):
    model = _net("repsr", 2, dtype=torch.float32)
    repsr.save_model(model, tmp_path / "m.safetensors")
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(str(tmp_path / "m.safetensors"), "pt") as f:
        meta = f.metadata()
    state = load_file(str(tmp_path / "m.safetensors"))
    state.pop("head_act.weight")
    save_file(state, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="do not fit"):
        repsr.load_model(tmp_path / "bad.safetensors")


def test_pickled_code_is_never_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"params": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError):
        repsr.load_model(tmp_path / "evil.pth")


def test_create_model_rejects_options_of_other_families():
    with pytest.raises(ValueError, match="does not apply"):
        repsr.create_model("repvgg", scale=2, expand_ratio=4)
    with pytest.raises(ValueError, match="unknown model option"):
        repsr.create_model("repsr", scale=2, expnd_ratio=4)


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    repsr.save_model(repsr.create_model("plain", scale=2, blocks=1, channels=4), tmp_path / "m.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("scale", [2, 3])
def test_every_family_starts_as_nearest_neighbour_upsampling(arch, scale):
    """One init policy for all seven families: the tail's output starts at zero, yet trains."""
    torch.manual_seed(0)
    model = repsr.create_model(arch, scale=scale, blocks=2, channels=8).train()
    x = torch.rand(4, 3, 12, 11)
    nearest = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest")
    torch.testing.assert_close(model(x), nearest, atol=1e-6, rtol=0)
    torch.testing.assert_close(repsr.reparameterize(model.eval())(x), nearest, atol=1e-6, rtol=0)
    model.train()
    (model(x) - 0.5).square().mean().backward()
    zeroed = [p for p in model.tail.parameters() if not p.any()]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in zeroed)  # zero, yet trainable
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    assert (model(x) - nearest).abs().max() > 1e-4  # one step leaves the skip: nothing is stuck at zero



def test_default_init_is_kept_on_request_and_is_why_the_tail_is_zeroed():
    torch.manual_seed(0)
    model = repsr.create_model("repsr", scale=2, blocks=2, channels=8, zero_init_tail=False).train()
    x = torch.rand(4, 3, 12, 12)
    residual = model(x) - torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    assert residual.std().item() > 0.3  # a BN-normalised expansion squeezed to a unit-scale residual


def _to_backbone_layout(state: dict) -> dict:
    """SRVGGNetCompact keys -> ETDS's plain ECBSR keys (``body.{2i+p}`` -> ``backbone.{i}.{p}``)."""
    out = {}
    for key, value in state.items():
        _, index, kind = key.split(".")
        out[f"backbone.{int(index) // 2}.{int(index) % 2}.{kind}"] = value
    return out


def test_plain_ecbsr_backbone_layout_loads_as_compact(tmp_path):
    merged = repsr.reparameterize(_net("ecbsr", 3, dtype=torch.float32).eval())
    path = tmp_path / "peer.pth"
    torch.save(_to_backbone_layout(merged.state_dict()), path)
    loaded = repsr.load_model(path)
    assert isinstance(loaded, CompactSR) and loaded.config.scale == 3 and loaded.config.channels == 8
    x = _x((9, 7), torch.float32)
    torch.testing.assert_close(loaded(x), merged(x), atol=0, rtol=0)
    broken = _to_backbone_layout(merged.state_dict())
    broken.pop("backbone.1.1.weight")  # a PReLU missing: not this layout
    torch.save(broken, path)
    with pytest.raises(WeightsError, match="unrecognised weights layout"):
        repsr.load_model(path)


@pytest.mark.parametrize("scale,params", [(2, 11_548), (3, 13_723), (4, 16_768)])
def test_etds_peer_files_load_and_match_their_own_forward(peers_dir, scale, params):
    """ETDS's forward, written from its layout: conv/PReLU stack, + input repeated per sub-pixel, shuffle."""
    raw = torch.load(peers_dir / f"etds_ecbsr_m4c16_x{scale}.pth", weights_only=True)
    model = repsr.load_model(peers_dir / f"etds_ecbsr_m4c16_x{scale}.pth")
    assert sum(p.numel() for p in model.parameters()) == params
    x = torch.rand(1, 3, 11, 9, generator=torch.Generator().manual_seed(0))
    y = x
    for i in range(5):
        y = F.prelu(F.conv2d(y, raw[f"backbone.{i}.0.weight"], raw[f"backbone.{i}.0.bias"], padding=1),
                    raw[f"backbone.{i}.1.weight"])
    y = F.conv2d(y, raw["backbone.5.0.weight"], raw["backbone.5.0.bias"], padding=1)
    ref = F.pixel_shuffle(y + x.repeat_interleave(scale * scale, dim=1), scale)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref, atol=1e-6, rtol=1e-6)
