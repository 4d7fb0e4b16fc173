"""Bicubic++: the network against a functional re-computation, odd sizes, the official weights, the score."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import repsr
from repsr.bench import BenchResult, BenchRow
from repsr.models.bicubic_pp import BicubicPP, official_config
from repsr.ntire import challenge_score, score_value, torch_bicubic
from repsr.weights import load_model, save_model
from tests.helpers import randomize


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """The released network written out with F.conv2d (official code: no padding of odd sizes)."""
    def conv(name: str, t: torch.Tensor, stride: int = 1) -> torch.Tensor:
        return F.conv2d(t, state[f"{name}.weight"], state.get(f"{name}.bias"), stride=stride, padding=1)

    x0 = F.leaky_relu(conv("conv0", x, 2), 0.1)
    x1 = F.leaky_relu(conv("conv1", x0), 0.1)
    y = F.leaky_relu(conv("conv2", x1), 0.1) + x0
    return F.pixel_shuffle(conv("conv_out", y), 2 * scale)


@pytest.mark.parametrize("scale,shuffle_channels", [(2, 48), (3, 108), (4, 192)])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_functional_recomputation(scale, shuffle_channels, bias):
    model = randomize(repsr.create_model("bicubic_pp", scale=scale, channels=12, bias=bias)).double().eval()
    assert model.conv_out.out_channels == shuffle_channels
    x = torch.rand(2, 3, 10, 14, dtype=torch.float64)
    out = model(x)
    assert out.shape == (2, 3, 10 * scale, 14 * scale)
    torch.testing.assert_close(out, reference_forward(model.state_dict(), x, scale), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [(7, 9), (8, 9), (7, 8), (1, 1), (5, 2)])
def test_odd_sizes_give_exactly_scale_times_input(size):
    model = randomize(repsr.create_model("bicubic_pp", scale=3, channels=8)).double().eval()
    x = torch.rand(1, 3, *size, dtype=torch.float64)
    out = model(x)
    assert out.shape[-2:] == (3 * size[0], 3 * size[1])
    # Equal to the reference on the replicate-padded even image, cropped: the odd side is "continued".
    padded = F.pad(x, (0, size[1] % 2, 0, size[0] % 2), mode="replicate")
    expected = reference_forward(model.state_dict(), padded, 3)[..., : 3 * size[0], : 3 * size[1]]
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_released_size_has_50400_parameters_and_no_biases():
    model = repsr.create_model("bicubic_pp", scale=3, channels=32, bias=False)
    assert sum(p.numel() for p in model.parameters()) == 50_400
    assert sorted(model.state_dict()) == ["conv0.weight", "conv1.weight", "conv2.weight", "conv_out.weight"]


def test_mid_channels_round_trip_through_safetensors(tmp_path: Path):
    model = randomize(repsr.create_model("bicubic_pp", scale=2, channels=10, mid_channels=6))
    assert model.conv1.out_channels == 6 and model.conv2.in_channels == 6
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.config == model.config
    x = torch.rand(1, 3, 6, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert official_config(model.state_dict()).mid_channels == 6


def official(peers_dir: Path) -> Path:
    path = peers_dir / "bicubic_pp_x3.pth"
    if not path.is_file():
        pytest.skip(f"official Bicubic++ weights not found at {path}")
    return path


def test_official_weights_load_and_match_the_functional_network(peers_dir):
    path = official(peers_dir)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = load_model(path, bgr=True)
    assert isinstance(model, BicubicPP) and model.config.bgr and not model.config.bias
    assert (model.config.scale, model.config.channels) == (3, 32)
    x = torch.rand(1, 3, 24, 30)
    torch.testing.assert_close(model(x), reference_forward(state, x, 3), rtol=1e-5, atol=1e-6)
    assert not load_model(path).config.bgr  # the file cannot say BGR: the caller does


def test_official_weights_beat_bicubic_only_in_their_channel_order(peers_dir, data_dir):
    """On one real image the BGR path wins over PyTorch bicubic, and feeding RGB is measurably worse."""
    from repsr.inference import super_resolve
    from repsr.metrics import psnr
    from repsr.ntire import samples

    path = official(peers_dir)
    hr, lr = next(iter(samples(data_dir / "Set5", 3, "bicubic")))

    def sr_psnr(bgr: bool) -> float:
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
        y = super_resolve(load_model(path, bgr=bgr), x)[0].permute(1, 2, 0).numpy()
        return psnr((y * 255).round().clip(0, 255).astype("uint8"), hr, 3)

    bicubic = psnr(torch_bicubic(lr, 3), hr, 3)
    assert sr_psnr(True) > bicubic + 0.3
    assert sr_psnr(True) > sr_psnr(False) + 0.05


def test_challenge_score_formula_and_its_zero_below_bicubic():
    assert score_value(30.0, 29.0, 1.0) == pytest.approx(2 * 2 / 0.1)
    assert score_value(30.5, 30.0, 4.0) == pytest.approx(2 * math.sqrt(2) / 0.2)
    assert score_value(29.0, 29.0, 1.0) == 0.0 and score_value(28.0, 29.0, 1.0) == 0.0
    result = challenge_score(31.0, 30.0, 16.0, "matlab")
    assert result.score == pytest.approx(10.0) and "matlab" in str(result)
    with pytest.raises(ValueError):
        challenge_score(31.0, 30.0, 1.0, "lanczos")
    with pytest.raises(ValueError):
        score_value(31.0, 30.0, 0.0)


def test_bench_prints_ntire_scores_for_720p_network_rows(monkeypatch, capsys):
    import repsr.commands.bench as bench_cmd

    fake = BenchResult("bicubic_pp", "cpu", 0, 1, "test CPU", {1: 100.0}, {1: {"fp32": 100.0}},
                       [BenchRow("1280x720x3", "merged fp32 NCHW", 1, 400.0, 1.0, 23.2, 58.0, 58.0, x_bicubic=40.0),
                        BenchRow("1280x720x3", "bicubic OpenCV uint8", 1, 10.0, 1.0, x_bicubic=1.0)])
    monkeypatch.setattr(bench_cmd, "run_bench", lambda *a, **k: fake)
    from repsr.cli import main

    assert main(["bench", "--model", "bicubic_pp", "--ntire-psnr", "27.0", "26.0", "--ntire-kernel", "torch"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "NTIRE score" in ln]
    assert len(lines) == 1 and "torch bicubic" in lines[0]
    assert f"{score_value(27.0, 26.0, 400.0):.3f}" in lines[0]


def test_score_methods_reproduces_the_published_bicubic_and_ranks_kernels(data_dir):
    """MATLAB bicubic on Set5 x3 is the field's 30.39 dB (Y); NTIRE LR (JPEG) scores lower."""
    from repsr.ntire import matlab_bicubic_up, score_methods

    methods = {"matlab": matlab_bicubic_up, "torch": torch_bicubic}
    clean = score_methods(methods, data_dir / "Set5", 3, "bicubic")
    assert clean["matlab"]["y"] == pytest.approx(30.40, abs=0.02) and clean["matlab"]["images"] == 5
    assert clean["matlab"]["rgb"] < clean["matlab"]["y"]  # no border crop, all channels
    ntire = score_methods(methods, data_dir / "Set5", 3, "ntire")
    assert ntire["matlab"]["y"] < clean["matlab"]["y"]
