"""The run config: strict one-line errors naming file and key, overrides, shipped configs, schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from repsr.errors import ConfigError
from repsr.train.config import bn_switch_iteration, load_train_config
from repsr.train.schedule import lr_factor

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load(path):
    config = load_train_config(path, ["model.blocks=2", "model.channels=8", "model.scale=2"])
    assert config.model.blocks == 2 and config.train.iters > 0


@pytest.mark.parametrize(("text", "key"), [
    ("train:\n  bn_swich: 0.5\n", "train.bn_swich"),
    ("train:\n  iters: many\n", "train.iters"),
    ("optim:\n  schedule: exponential\n", "optim.schedule"),
    ("model:\n  chanels: 8\n", "model.chanels"),
    ("train:\n  bn_switch: 1.5\n", "train.bn_switch"),
])
def test_bad_keys_and_values_are_one_line_errors_naming_file_and_key(tmp_path, text, key):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  train: [x]\n" + text)
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and key in message


def test_overrides_parse_yaml_values_and_numbers_without_a_dot():
    config = load_train_config(None, ["data.train=[a, b]", "train.lr=2e-4", "train.bn_switch=1200",
                                      "train.amp=bf16", "train.ema=null"])
    assert config.data.train == ["a", "b"] and config.train.lr == 2e-4 and config.train.amp == "bf16"
    assert bn_switch_iteration(config.train) == 1200


def test_typed_values_go_in_as_they_are_and_set_overrides_win_over_them():
    """A command's own options (repsr prune's --train, --lr) are values, not text: a folder named 'on' stays a
    name; the user's --set still has the last word."""
    config = load_train_config(None, ["train.lr=5e-5"], values={"train.lr": 3e-4, "data.train": ["on", "1e-3"],
                                                                "train.bn_switch": None, "optim.min_lr": 3e-5})
    assert config.data.train == ["on", "1e-3"] and config.train.lr == 5e-5 and config.optim.min_lr == 3e-5
    assert bn_switch_iteration(config.train) is None


@pytest.mark.parametrize(("value", "expected"), [("0.8", 800), ("0.5", 500), ("300", 300), ("null", None),
                                                 ("off", None), ("1.0", 1000)])
def test_bn_switch_as_fraction_iteration_or_off(value, expected):
    config = load_train_config(None, ["data.train=a", "train.iters=1000", f"train.bn_switch={value}"])
    assert bn_switch_iteration(config.train) == expected


@pytest.mark.parametrize("value", ["1", "0"])
def test_bn_switch_1_or_0_is_refused_as_ambiguous_between_iteration_and_fraction(value):
    with pytest.raises(ConfigError, match=r"'train.bn_switch' = \d is ambiguous: write a fraction with a dot"):
        load_train_config(None, ["data.train=a", "train.iters=1000", f"train.bn_switch={value}"])


def test_schedules():
    base = ["data.train=a", "train.iters=100", "train.lr=1e-3", "optim.min_lr=1e-5"]
    cosine = lr_factor(load_train_config(None, [*base, "optim.schedule=cosine"]))
    assert cosine(0) == pytest.approx(1.0) and cosine(100) == pytest.approx(0.01) and cosine(50) < 0.6
    step = lr_factor(load_train_config(None, [*base, "optim.schedule=multistep", "optim.milestones=[0.5, 80]"]))
    assert [step(i) for i in (49, 50, 79, 80)] == [1.0, 0.5, 0.5, 0.25]
    assert lr_factor(load_train_config(None, base))(99) == 1.0
