"""End-to-end training of a tiny RepSR: the BN switch, merge == graph, validation, bit-identical resume."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from test_checkpoint import assert_same_tree, save_legacy_checkpoint

from repsr.bn import batchnorm_layers, is_bn_frozen
from repsr.errors import UserError
from repsr.imageio import read_image
from repsr.reparam.convert import reparameterize
from repsr.train.checkpoint import load_checkpoint, rng_state, save_checkpoint
from repsr.train.config import load_train_config
from repsr.train.loop import Trainer, train
from repsr.train.validate import load_val_sets, validate

ITERS = 30


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions run fastest (and immune to busy cores) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_tiny_set(data_dir: Path, root: Path, size: int = 64, scale: int = 2) -> Path:
    """Centre crops of Set5 in EDSR layout (``HR/`` + ``LR_bicubic/X2``): real pixels, tiny cost."""
    import numpy as np

    from repsr.data.degrade import degrade
    from repsr.imageio import write_image

    for path in sorted((data_dir / "Set5" / "HR").iterdir()):
        hr = np.rint(read_image(path).rgb * 255).astype(np.uint8)
        y, x = (hr.shape[0] - size) // 2, (hr.shape[1] - size) // 2
        crop = np.ascontiguousarray(hr[y:y + size, x:x + size])
        write_image(root / "HR" / path.name, crop)
        write_image(root / "LR_bicubic" / f"X{scale}" / f"{path.stem}x{scale}.png", degrade(crop, scale))
    return root


@pytest.fixture(scope="module")
def tiny_set(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_set(data_dir, tmp_path_factory.mktemp("tiny") / "Tiny5")


def tiny_config(data: Path, output: Path, *extra: str):
    """M2C8 x2 on 64x64 crops of Set5, LR patches of 16, BN switch at 50% (iteration 15)."""
    return load_train_config(None, [
        "model.arch=repsr", "model.blocks=2", "model.channels=8", "model.scale=2",
        f"train.iters={ITERS}", "train.batch_size=4", "train.patch_size=16", "train.lr=2e-3",
        "train.bn_switch=0.5", "train.bn_calib_batches=3", "train.val_every=0", "train.ckpt_every=0",
        "train.log_every=10", "train.amp=false", f"data.train=[{data}]", f"data.val=[{data}]", f"output={output}",
        *extra,
    ])


def bn_stats(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for bn in batchnorm_layers(model) for t in (bn.running_mean, bn.running_var)]


@pytest.fixture(scope="module")
def full_run(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted 30-iteration run, shared by the tests below."""
    return train(tiny_config(tiny_set, tmp_path_factory.mktemp("full")))


@pytest.fixture(scope="module")
def resumed_run(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory):
    """The same run stopped at iteration 20 (after the switch) and resumed to the end."""
    out = tmp_path_factory.mktemp("resumed")
    stopped = train(tiny_config(tiny_set, out), stop_at=20)
    stats_at_stop = bn_stats(stopped.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = train(tiny_config(tiny_set, out), resume=True)
    return stopped, stats_at_stop, resumed


def test_bn_is_frozen_and_statistics_stay_constant_after_the_switch(full_run, resumed_run):
    _, stats_at_20, _ = resumed_run
    assert full_run.switched and is_bn_frozen(full_run.model)
    final = bn_stats(full_run.model)
    assert len(final) == 2 * len(batchnorm_layers(full_run.model)) > 0
    # 10 training steps (and model.train() calls) between iteration 20 and 30 left them untouched.
    assert all(torch.equal(a, b) for a, b in zip(stats_at_20, final, strict=True))
    record = [json.loads(line) for line in (full_run.output / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in record if r["kind"] == "bn_switch"] == [15]


def test_merged_output_equals_training_graph_in_train_mode(full_run):
    model = full_run.model.train()
    merged = reparameterize(model)
    x = torch.rand(2, 3, 13, 11, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(merged(x), model(x), atol=2e-5, rtol=1e-5)
    assert (full_run.output / "model_merged.safetensors").is_file()
    assert (full_run.output / "model_best.safetensors").is_file()


def test_validation_psnr_improves_and_graph_matches_merge(full_run, tiny_set, tmp_path):
    sets = load_val_sets([str(tiny_set)], 2)
    start = tiny_config(tiny_set, tmp_path)
    torch.manual_seed(start.seed)
    from repsr.models import build_model

    before = validate(build_model(start.model), sets, 2)
    after = validate(full_run.model, sets, 2)
    # the untrained net already equals nearest-neighbour upsampling (zero-initialised tail output)
    assert after["psnr"] > before["psnr"] + 0.5
    assert max(after["gap"].values()) < 1e-3


def test_resume_is_bit_identical_to_an_uninterrupted_run(full_run, resumed_run):
    stopped, _, resumed = resumed_run
    assert stopped.iteration == 20 and resumed.iteration == ITERS
    a, b = full_run.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    opt_a, opt_b = full_run.state["optimizer"]["state"], resumed.state["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)


def test_resume_from_before_the_switch_into_merged_training_is_bit_identical(full_run, tiny_set, tmp_path):
    """Stopped at 10 (branch forward, batch statistics), resumed across the switch at 15 into merged steps."""
    train(tiny_config(tiny_set, tmp_path), stop_at=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = train(tiny_config(tiny_set, tmp_path), resume=True)
    a, b = full_run.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_merged_forward_and_branch_forward_runs_end_at_the_same_weights(full_run, tiny_set, tmp_path):
    """The default (merged after the switch) against branches throughout: float32 rounding apart, equal."""
    branch = train(tiny_config(tiny_set, tmp_path, "train.merged_forward=false"))
    a, b = full_run.model.state_dict(), branch.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), atol=1e-4, rtol=1e-4, msg=key)


def test_bf16_autocast_trains_on_cpu(tiny_set, tmp_path):
    run = train(tiny_config(tiny_set, tmp_path, "train.amp=bf16", "train.iters=20"))
    assert run.iteration == 20 and all(p.dtype == torch.float32 for p in run.model.parameters())
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_fp16_autocast_is_refused_on_cpu(tiny_set, tmp_path):
    with pytest.raises(UserError, match="fp16 runs on CUDA only"):
        train(tiny_config(tiny_set, tmp_path, "train.amp=fp16", "train.device=cpu"))


def test_a_run_killed_after_the_switch_logs_it_once_and_says_where_it_resumes(tiny_set, tmp_path, capsys):
    """Killed between the switch (iteration 15) and the next checkpoint, then resumed from 15.

    The iterations after the checkpoint run again; their records (the switch, a validation)
    must not be logged twice, and the temporary file of the interrupted write is removed.
    """
    out = tmp_path / "run"
    config = tiny_config(tiny_set, out)
    ckpt = out / "checkpoints" / "latest.safetensors"
    train(config, stop_at=15)  # its checkpoint at 15 is taken just before the switch of iteration 15
    at_15 = ckpt.read_bytes()
    train(config, resume=True, stop_at=20)  # switches, validates and checkpoints at 20
    ckpt.write_bytes(at_15)  # as if killed before the checkpoint at 20 was written ...
    stale = ckpt.with_name(".latest.safetensors.k1ll3d.tmp")
    stale.write_bytes(b"")  # ... in the middle of writing it
    capsys.readouterr()
    train(config, resume=True)
    assert "resuming from iteration 15" in capsys.readouterr().err
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "bn_switch"] == [15]
    assert [r["iter"] for r in records if r["kind"] == "val"] == [15, ITERS]
    assert not stale.exists()


@pytest.mark.parametrize("name", ["latest.safetensors", "latest.pt"])
def test_a_cut_off_checkpoint_is_named_as_such(tmp_path, name):
    path = tmp_path / name
    write = save_checkpoint if name == "latest.safetensors" else save_legacy_checkpoint
    write(path, {"iteration": 3, "model": {"w": torch.zeros(256)}})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"checkpoint is truncated or corrupt \([\d,]+ bytes.*without --resume"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(UserError, match="checkpoint is empty"):
        load_checkpoint(path)


def test_a_checkpoint_round_trips_the_trainer_state_exactly(tiny_set, tmp_path):
    """Every tensor (dtype, shape, bits) and every other value (int keys, tuples, floats, None) comes back."""
    run = train(tiny_config(tiny_set, tmp_path / "run", "train.iters=3", "train.ema=0.9", "data.val=[]"))
    state = run.state
    assert state["ema"] is not None and state["optimizer"]["state"]
    path = tmp_path / "latest.safetensors"
    rng = rng_state()
    save_checkpoint(path, state)
    assert_same_tree({"rng": rng, **state}, load_checkpoint(path))


def _tensor_names(skeleton: object) -> Iterator[str]:
    if isinstance(skeleton, dict):
        if set(skeleton) == {"tensor"}:
            yield skeleton["tensor"]
        else:
            for value in skeleton.values():
                yield from _tensor_names(value)
    elif isinstance(skeleton, list):
        for value in skeleton:
            yield from _tensor_names(value)


def test_a_run_checkpoints_to_safetensors_with_the_rest_as_json(full_run):
    """No pickle: the file is a safetensors header (JSON) and tensor bytes; the state's structure is JSON."""
    folder = full_run.output / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["latest.safetensors"]
    path = folder / "latest.safetensors"
    data = path.read_bytes()
    header = json.loads(data[8: 8 + int.from_bytes(data[:8], "little")])
    with safe_open(str(path), framework="pt") as f:
        metadata, names = f.metadata(), set(f.keys())
    assert header["__metadata__"] == metadata and set(metadata) == {"format", "repsr.checkpoint"}
    assert metadata["format"] == "repsr-train-2"
    skeleton = json.loads(metadata["repsr.checkpoint"])
    assert set(_tensor_names(skeleton)) == names
    assert {"model/head_act.weight", "optimizer/state/0/exp_avg", "rng/torch", "rng/numpy/keys"} <= names
    fields = skeleton["dict"]
    assert fields["iteration"] == ITERS and fields["ema"] is None
    assert fields["bn_switch"] == {"dict": {"switched": True, "at": 15}}
    assert fields["optimizer"]["dict"]["state"]["items"][0][0] == 0  # int keys stay ints


def test_resume_from_a_legacy_pt_checkpoint_is_bit_identical(full_run, tiny_set, tmp_path, monkeypatch):
    """A run stopped by an earlier version (``latest.pt``, a weights-only pickle) continues bit for bit; its
    ``latest.pt`` gives way to ``latest.safetensors`` at the first new checkpoint."""
    import repsr.train.loop as loop

    out = tmp_path / "run"
    folder = out / "checkpoints"
    with monkeypatch.context() as patch:  # the writer of the versions before repsr-train-2
        patch.setattr(loop, "save_run_checkpoint", lambda _, state: save_legacy_checkpoint(folder / "latest.pt", state))
        train(tiny_config(tiny_set, out), stop_at=20)
    assert sorted(p.name for p in folder.iterdir()) == ["latest.pt"]
    with pytest.raises(UserError, match="latest.pt exists: pass --resume"):
        Trainer(tiny_config(tiny_set, out))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = train(tiny_config(tiny_set, out), resume=True)
    assert resumed.iteration == ITERS
    assert sorted(p.name for p in folder.iterdir()) == ["latest.safetensors"]
    a, b = full_run.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    opt_a, opt_b = full_run.state["optimizer"]["state"], resumed.state["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)


def test_init_weights_starts_the_run_from_the_file_and_refuses_another_model(tiny_set, tmp_path):
    from helpers import randomize

    from repsr.errors import ConfigError
    from repsr.models import build_model
    from repsr.weights import save_model

    config = tiny_config(tiny_set, tmp_path / "run")
    start = randomize(build_model(config.model), seed=5)
    save_model(start, tmp_path / "start.safetensors")
    trainer = Trainer(tiny_config(tiny_set, tmp_path / "run", f"train.init_weights={tmp_path / 'start.safetensors'}"))
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.state_dict().values(), start.state_dict().values(),
                                                 strict=True))
    save_model(build_model(tiny_config(tiny_set, tmp_path, "model.channels=4").model), tmp_path / "other.safetensors")
    with pytest.raises(ConfigError, match="train.init_weights: .* holds repsr M2C4"):
        Trainer(tiny_config(tiny_set, tmp_path / "run2", f"train.init_weights={tmp_path / 'other.safetensors'}"))


def test_a_run_leaves_torch_threads_and_determinism_as_it_found_them(tiny_set, tmp_path):
    """A library call must not change its caller's process: train.threads and train.deterministic are the
    run's own settings, undone when run() returns."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(3)
    try:
        trainer = Trainer(tiny_config(tiny_set, tmp_path / "run", "train.iters=2", "train.threads=1",
                                      "train.deterministic=true"))
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        trainer.run()
        assert torch.get_num_threads() == 3 and not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def test_ema_runs_also_score_the_live_weights(tiny_set, tmp_path):
    """With train.ema the shipped weights are the average; the log also scores the live ones, so every
    run measures what EMA bought on the same trajectory (issue 28)."""
    run = train(tiny_config(tiny_set, tmp_path / "run", "train.iters=4", "train.val_every=0", "train.ema=0.5"))
    val = [json.loads(line) for line in (run.output / "metrics.jsonl").read_text().splitlines()]
    record = next(r for r in val if r["kind"] == "val")
    sets = load_val_sets([str(tiny_set)], 2, None)
    live = validate(run.model, sets, 2)["merged"]
    ema = validate(run.eval_model, sets, 2)["merged"]
    name = next(iter(live))
    assert record["live"][name]["psnr"] == pytest.approx(live[name]["psnr"], abs=1e-9)
    assert record["merged"][name]["psnr"] == pytest.approx(ema[name]["psnr"], abs=1e-9)
    assert live[name]["psnr"] != ema[name]["psnr"]  # decay 0.5 over 4 steps: the two nets differ
