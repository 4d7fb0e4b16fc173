"""The model-family registry: every entry builds, trains, merges exactly and round-trips; a new family is one entry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import randomize
from torch import Tensor, nn

import repsr
from repsr.config import ModelConfig
from repsr.errors import ConfigError, WeightsError
from repsr.inference import load_runner, load_upscaler, upscale_tiled
from repsr.models import FAMILIES, Family, Layout, ModelFacts, declared_facts, model_config
from repsr.reparam.base import Fusable
from repsr.train.config import load_train_config
from repsr.weights import save_model

ALL = sorted(FAMILIES)


def _net(arch: str, scale: int = 2) -> nn.Module:
    torch.manual_seed(0)
    model = repsr.create_model(arch, scale=scale, blocks=2, channels=8)
    return randomize(model.double(), seed=len(arch))


def _x(size: tuple[int, int] = (9, 7), dtype: torch.dtype = torch.float64) -> Tensor:
    return torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(5), dtype=dtype)


@pytest.mark.parametrize("arch", ALL)
def test_every_family_builds_trains_a_step_merges_exactly_and_round_trips(tmp_path, arch):
    family = FAMILIES[arch]
    model = _net(arch).train()
    lr, hr = _x(), torch.rand(2, 3, 18, 14, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    loss = F.l1_loss(model(lr), hr)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()), "a parameter gets no grad"
    torch.optim.SGD(model.parameters(), lr=0.05).step()
    assert F.l1_loss(model(lr), hr) != loss, "one step changes nothing"

    model.eval()
    merged = repsr.reparameterize(model)
    assert model_config(merged).arch == (family.deploy or arch)
    assert not any(isinstance(m, Fusable) for m in merged.modules())
    torch.testing.assert_close(merged(lr), model(lr), atol=1e-10, rtol=0)

    for net, name in ((model, "train"), (merged, "merged")):
        net = net.float()
        save_model(net, tmp_path / f"{name}.safetensors")
        loaded = repsr.load_model(tmp_path / f"{name}.safetensors")
        assert type(loaded) is type(net) and model_config(loaded) == model_config(net)
        torch.testing.assert_close(loaded(lr.float()), net(lr.float()), atol=0, rtol=0)


@pytest.mark.parametrize("arch", ALL)
def test_every_family_declares_a_receptive_radius_that_bounds_its_true_one(arch):
    """Perturb one LR pixel: no output pixel farther than the declared radius (in LR pixels) may change."""
    model = _net(arch, scale=3).eval()
    radius, align = declared_facts(model_config(model))
    side = 2 * radius + 10
    centre = side // 2 // align * align
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    bumped = x.clone()
    bumped[..., centre, centre] += 1.0
    with torch.no_grad():
        changed = (model(bumped) - model(x)).abs().sum(1)[0] > 0
    rows, cols = changed.nonzero(as_tuple=True)
    assert len(rows) > 0
    assert int((rows // 3 - centre).abs().max()) <= radius and int((cols // 3 - centre).abs().max()) <= radius


@pytest.mark.parametrize("arch", [a for a in ALL if FAMILIES[a].layouts])
def test_a_family_recognises_its_own_state_dict_saved_without_a_config(tmp_path, arch):
    model = randomize(repsr.create_model(arch, scale=2, channels=8)).eval()  # blocks: the default, as files lack it
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    loaded = repsr.load_model(tmp_path / "bare.pth")
    assert model_config(loaded) == model_config(model)
    torch.testing.assert_close(loaded(_x(dtype=torch.float32)), model(_x(dtype=torch.float32)), atol=0, rtol=0)


def test_the_training_config_reads_the_registry(tmp_path):
    with pytest.raises(ConfigError, match="unknown arch 'rpsr'"):
        load_train_config(None, ["data.train=[hr]", "model.arch=rpsr"])
    with pytest.raises(ConfigError, match="option 'paths' does not apply to arch 'plain'"):
        load_train_config(None, ["data.train=[hr]", "model.arch=plain", "model.paths=3"])
    with pytest.raises(ConfigError, match="merged inference net"):
        load_train_config(None, ["data.train=[hr]", "model.arch=compact"])


def test_a_runtime_file_is_refused_where_a_network_is_needed(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"not loaded: refused by its suffix")
    with pytest.raises(repsr.UserError, match="not PyTorch weights"):
        load_runner(str(tmp_path / "m.onnx"), network=True)


class ToyNet(ModelFacts, nn.Module):
    """A new family in a dozen lines: one 3x3 conv and a pixel shuffle, declaring its field."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(config.in_channels, config.in_channels * config.scale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(config.scale)

    @classmethod
    def receptive_radius_of(cls, config: ModelConfig) -> int:
        return 1

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.shuffle(self.conv(x))
        return out


def _toy_config(state: dict[str, Tensor]) -> ModelConfig:
    return ModelConfig(arch="toy", scale=round((state["conv.weight"].shape[0] / 3) ** 0.5), blocks=0)


TOY = Family("toy", ToyNet, ToyNet, layouts=(Layout("a toy .pth", lambda s: set(s) == {"conv.weight", "conv.bias"},
                                                    _toy_config),))


def test_a_new_family_is_one_registry_entry(tmp_path, monkeypatch):
    """Registered in the test alone: create_model, save/load, a foreign layout, tiling, the engine loader and the
    training config all take it, and nothing else in the package had to change."""
    with pytest.raises(ValueError, match="unknown arch 'toy'"):
        repsr.create_model("toy", scale=3)
    monkeypatch.setitem(FAMILIES, "toy", TOY)
    model = repsr.create_model("toy", scale=3, blocks=0).eval()
    assert isinstance(model, ToyNet) and model.config.channels == 16
    with pytest.raises(ValueError, match="does not apply"):
        repsr.create_model("toy", scale=3, blocks=0, paths=3)

    x = _x((10, 9), torch.float32)
    save_model(model, tmp_path / "toy.safetensors")
    loaded = repsr.load_model(tmp_path / "toy.safetensors")
    assert isinstance(loaded, ToyNet) and loaded.config == model.config
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)

    torch.save({"params": model.state_dict()}, tmp_path / "toy.pth")
    foreign = load_runner(str(tmp_path / "toy.pth"), network=True)
    assert foreign.config == model.config
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="a toy .pth"):
        repsr.load_model(tmp_path / "other.pth")

    upscaler = load_upscaler(str(tmp_path / "toy.safetensors"), "eager")
    assert (upscaler.scale, upscaler.receptive_radius, upscaler.tile_alignment) == (3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(upscale_tiled(upscaler, x[:1], tile=4), model(x[:1]).clamp(0, 1),
                                   atol=1e-6, rtol=0)

    config = load_train_config(None, ["data.train=[hr]", "model.arch=toy", "model.blocks=0"])
    assert config.model.arch == "toy"
