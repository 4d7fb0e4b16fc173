"""The training checkpoint format: a nested state as safetensors + JSON, read back exactly; old .pt files still load."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from repsr.atomic import atomic_write
from repsr.errors import UserError
from repsr.models import build_model
from repsr.train.checkpoint import STATE_KEY, find_checkpoint, load_checkpoint, rng_state, save_checkpoint
from repsr.train.config import config_from_json
from repsr.train.schedule import build_optimizer
from repsr.train.tensor_tree import flatten, unflatten


def save_legacy_checkpoint(path: str | Path, state: dict[str, object]) -> None:
    """What repsr wrote before ``repsr-train-2`` (and the runs started before it still write): a pickle."""
    payload = {"format": "repsr-train-1", "rng": rng_state(), **state}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def assert_same_tree(a: object, b: object, path: str = "") -> None:
    """Equal in every respect a loader can see: container and key types, order, dtypes, shapes, values, bits."""
    if type(a) is OrderedDict:  # state_dict()'s OrderedDict is read back as a dict (same order)
        assert type(b) is dict, path
    else:
        assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), path
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict)
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b], path
        for key in a:
            assert_same_tree(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tree(x, y, f"{path}/{i}")
    elif isinstance(a, float):
        assert isinstance(b, float)
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def every_kind() -> dict[str, object]:
    """What training states hold, and the corners JSON and safetensors get wrong when not told."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return {
        "optimizer": {"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.randn(2, 3)}, 3: {}},
                      "param_groups": [{"betas": (0.9, 0.99), "params": [0, 3], "foreach": None,
                                        "amsgrad": False, "lr": 1e-3}]},
        "python_rng": (3, tuple(range(5)), None),
        "floats": [0.1, -0.0, 1e-300, 2.5e300, math.inf, -math.inf, math.nan, 1.0, 30.142820827074424],
        "ints": [0, -1, 2**70, True, False],
        "strings": ["", "a/b", "%2F", "ü € \n \"quoted\""],
        "keys": {"a/b": torch.ones(1), "a%2Fb": torch.zeros(1), "": 1, "7": "str key"},
        "mixed": {1: "int key", "1": "str key"},
        "empty": [[], (), {}, {"dict": 1}, {"tensor": "not a tensor"}],
        "dtypes": {str(d): torch.arange(6).to(d).reshape(2, 3) for d in
                   (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8, torch.int8,
                    torch.int16, torch.int32, torch.int64, torch.bool)},
        "shapes": [torch.tensor(3), torch.zeros(0, 3), torch.zeros(1, 1, 1, 1)],
        "views": [base.t(), base[1:], base[:, ::2]],  # non-contiguous, and sharing one storage
        "scaler": torch.amp.GradScaler("cpu", enabled=True).state_dict(),
        "model": OrderedDict([("body.0.weight", torch.randn(4, 3, 3, 3)), ("body.0.bias", torch.randn(4))]),
    }


def test_flatten_then_unflatten_is_the_identity_on_every_kind_of_value(tmp_path):
    tree = every_kind()
    tensors, skeleton = flatten(tree)
    text = json.dumps(skeleton, allow_nan=False)  # strict JSON: inf and NaN are spelled out
    assert_same_tree(tree, unflatten(json.loads(text), tensors))
    assert "optimizer/state/0/exp_avg" in tensors and "keys/a%2Fb" in tensors and "keys/a%252Fb" in tensors


def test_a_checkpoint_file_round_trips_every_kind_of_value(tmp_path):
    path = tmp_path / "latest.safetensors"
    tree = every_kind()
    save_checkpoint(path, tree)
    loaded = load_checkpoint(path)
    assert list(loaded) == ["rng", *tree]
    assert_same_tree(tree, {k: v for k, v in loaded.items() if k != "rng"})


@pytest.mark.parametrize("value", [np.zeros(3), np.float64(1.0), {1, 2}, {True: 1}, print, torch.float32,
                                   torch.zeros(3).to_sparse()])
def test_flatten_refuses_what_it_could_not_give_back(value):
    with pytest.raises(TypeError, match=r"^a/b: "):
        flatten({"a": {"b": value}})


def test_unflatten_rejects_a_skeleton_that_does_not_fit_its_tensors():
    for skeleton in ({"tensor": "gone"}, {"tuple": [1], "dict": {}}, {"pickle": "x"}, {"items": [[1.5, 2]]},
                     {"float": "big"}):
        with pytest.raises(ValueError):
            unflatten(skeleton, {})


def test_both_formats_in_one_run_folder_are_refused_by_name(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    assert find_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints" / "latest.pt").write_bytes(b"old")
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoints" / "latest.pt"
    (tmp_path / "checkpoints" / "latest.safetensors").write_bytes(b"new")
    with pytest.raises(UserError, match="holds both latest.safetensors and latest.pt .*delete the one"):
        find_checkpoint(tmp_path)


def test_a_newer_format_asks_for_a_newer_repsr(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "latest.safetensors"
    save_file({"x": torch.zeros(1)}, path, metadata={"format": "repsr-train-9", STATE_KEY: "{}"})
    with pytest.raises(UserError, match="repsr-train-9 is not repsr-train-2.*upgrade repsr"):
        load_checkpoint(path)


COMMITTED = sorted((REPO / "experiments" / "checkpoints").glob("*/latest.*"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_committed_checkpoints_load_into_their_model_and_convert_exactly(path, tmp_path):
    """The checkpoints earlier sessions committed (torch.save pickles, ``repsr-train-1``) stay resumable."""
    state = load_checkpoint(path)
    config = config_from_json(state["config"], str(path))
    model = build_model(config.model)
    model.load_state_dict(state["model"])
    optimizer, scheduler = build_optimizer(model, config)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    assert scheduler.last_epoch == state["iteration"] > 0
    converted = tmp_path / "latest.safetensors"
    rest = {k: v for k, v in state.items() if k != "rng"}
    save_checkpoint(converted, rest)
    assert_same_tree(rest, {k: v for k, v in load_checkpoint(converted).items() if k != "rng"})


def test_committed_checkpoints_exist():
    assert COMMITTED, "experiments/checkpoints/*/latest.* is the compatibility corpus of the test above"
