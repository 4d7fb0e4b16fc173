"""Global structured pruning of Bicubic++: exact surgery, PSNR-priced choices, the prune command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import repsr
from repsr.cli import main
from repsr.prune import (
    GROUPS,
    ValBatch,
    batch_psnr,
    channel_costs,
    channel_masked,
    drop_biases,
    global_prune,
    remove_channels,
    widths,
)
from repsr.prune.search import cheapest
from repsr.weights import load_model, save_model
from tests.helpers import randomize

RESIDUAL, MID = GROUPS


def tiny(channels: int = 8, bias: bool = True, seed: int = 0):
    return randomize(repsr.create_model("bicubic_pp", scale=3, channels=channels, bias=bias), seed).double().eval()


def zero_channel(model, group, k: int) -> None:
    with torch.no_grad():
        for name in group.convs:
            conv = getattr(model, name)
            conv.weight[k].zero_()
            if conv.bias is not None:
                conv.bias[k].zero_()


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("bias", [True, False])
def test_removing_an_all_zero_channel_changes_no_output(group, bias):
    model = tiny(bias=bias)
    zero_channel(model, group, 3)
    x = torch.rand(2, 3, 9, 12, dtype=torch.float64)
    pruned = remove_channels(model, group, [3])
    assert widths(pruned)[group.name] == 7 and pruned.conv_out.out_channels == model.conv_out.out_channels
    torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-13)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_masking_a_channel_equals_removing_it(group):
    """The pricing shortcut is exact: zeroed weights+bias compute what the pruned net computes."""
    model = tiny()
    x = torch.rand(1, 3, 10, 10, dtype=torch.float64)
    before = model(x)
    with channel_masked(model, group, 5):
        masked = model(x)
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)  # restored
    assert not torch.allclose(masked, before)
    torch.testing.assert_close(remove_channels(model, group, [5])(x), masked, rtol=0, atol=1e-13)


def test_pruned_net_is_a_plain_dense_model_that_round_trips(tmp_path: Path):
    model = tiny(channels=10)
    pruned = remove_channels(remove_channels(model, RESIDUAL, [0, 9]), MID, [4, 5, 6])
    assert widths(model) == {"residual": 10, "mid": 10}  # original untouched
    assert type(pruned) is type(model) and pruned.config.channels == 8 and pruned.config.mid_channels == 7
    assert [tuple(p.shape) for p in pruned.parameters()][::2] == [(8, 3, 3, 3), (7, 8, 3, 3), (8, 7, 3, 3),
                                                                  (108, 8, 3, 3)]
    save_model(pruned, tmp_path / "p.safetensors")
    x = torch.rand(1, 3, 7, 9)
    torch.testing.assert_close(load_model(tmp_path / "p.safetensors")(x), pruned.float()(x))
    with pytest.raises(ValueError):
        remove_channels(pruned, MID, list(range(7)))


def test_drop_biases_gives_a_bias_free_net_equal_when_biases_are_zero():
    model = tiny()
    with torch.no_grad():
        for conv in (model.conv0, model.conv1, model.conv2, model.conv_out):
            conv.bias.zero_()
    dropped = drop_biases(model)
    assert not dropped.config.bias and all(not k.endswith("bias") for k in dropped.state_dict())
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(dropped(x), model(x), rtol=0, atol=0)


def synthetic_val(seed: int = 0) -> ValBatch:
    gen = torch.Generator().manual_seed(seed)
    lr = torch.rand(3, 3, 8, 8, generator=gen, dtype=torch.float64)
    hr = torch.nn.functional.interpolate(lr, scale_factor=3, mode="bilinear").clamp(0, 1)
    return ValBatch(lr, hr, ("a", "b", "c"))


def test_cheapest_channels_are_the_ones_with_least_psnr_cost():
    model, val = tiny(), synthetic_val()
    zero_channel(model, MID, 2)
    base = batch_psnr(model, val)
    costs = {g.name: channel_costs(model, val, g, base) for g in GROUPS}
    assert costs["mid"][2] == 0.0  # an all-zero channel costs nothing
    chosen = cheapest(model, val, {"residual": 4, "mid": 4}, 3)
    worst_chosen = max(c for _, _, c in chosen)
    picked = {(n, k) for n, k, _ in chosen}
    others = [c for name, cs in costs.items() for k, c in enumerate(cs) if (name, k) not in picked]
    assert len(chosen) == 3 and worst_chosen <= min(others)
    assert all(costs[name][k] == c for name, k, c in chosen)


def test_global_prune_reaches_targets_with_a_dense_net_every_round():
    model, val = tiny(), synthetic_val()
    seen = []

    def finetune(m):
        seen.append(widths(m))
        assert isinstance(m, type(model))
        return m

    pruned, history = global_prune(model, val, {"residual": 5, "mid": 6}, per_round=2, finetune=finetune,
                                   log=lambda _: None)
    assert widths(pruned) == {"residual": 5, "mid": 6}
    assert sum(len(r.removed) for r in history.rounds) == 5 and len(seen) == len(history.rounds) == 3
    assert history.rounds[-1].psnr_finetuned == pytest.approx(batch_psnr(pruned, val))


def test_prune_command_end_to_end_writes_a_bias_free_target_width_net(tmp_path: Path, data_dir: Path, capsys):
    src = tmp_path / "wide.safetensors"
    save_model(randomize(repsr.create_model("bicubic_pp", scale=3, channels=6), seed=1), src)
    out = tmp_path / "final.safetensors"
    argv = ["prune", str(src), "--data", str(data_dir / "Set5"), "--target-channels", "4", "--val-images", "2",
            "--val-crop", "32", "--train", str(data_dir / "Set5"), "--finetune-iters", "2", "--batch-size", "2",
            "--patch-size", "16", "--drop-bias", "--bias-finetune-iters", "2", "-o", str(out)]
    assert main(argv) == 0
    final = load_model(out)
    assert final.config.channels == 4 and final.config.mid_channels is None and not final.config.bias
    assert "round" in capsys.readouterr().out
    with safe_open(out, "pt") as f:  # the PruneRecord of the stages that ran
        record = json.loads(f.metadata()["prune"])
    assert list(record) == ["psnr_start", "psnr_pruned", "psnr_bias_dropped", "psnr_bias_finetuned"]


def test_prune_command_reports_user_errors(tmp_path: Path, data_dir: Path, capsys):
    compact = tmp_path / "c.safetensors"
    save_model(repsr.create_model("plain", scale=2, blocks=1, channels=4), compact)
    assert main(["prune", str(compact), "--data", str(tmp_path), "--target-channels", "2", "-o",
                 str(tmp_path / "o.safetensors")]) == 2
    assert "Bicubic++" in capsys.readouterr().err
    assert main(["prune", str(compact), "--data", str(tmp_path), "--target-channels", "2", "--finetune-iters", "3",
                 "-o", str(tmp_path / "o.safetensors")]) == 2
    assert "--train" in capsys.readouterr().err
    bpp, empty = tmp_path / "b.safetensors", tmp_path / "empty"
    save_model(repsr.create_model("bicubic_pp", scale=3, channels=6), bpp)
    empty.mkdir()
    set5 = str(data_dir / "Set5")
    assert main(["prune", str(bpp), "--data", set5, "--target-channels", "8", "--val-images", "1", "-o",
                 str(tmp_path / "o.safetensors")]) == 2
    assert "target width 8 for residual is outside 1..6" in capsys.readouterr().err
    assert main(["prune", str(bpp), "--data", set5, "--target-channels", "4", "--train", str(empty),
                 "--finetune-iters", "2", "-o", str(tmp_path / "o.safetensors")]) == 2
    assert f"{empty}: no images" in capsys.readouterr().err


def test_stage3_fine_tunes_through_the_trainer_from_the_pruned_weights(tmp_path: Path, data_dir: Path):
    """--drop-bias --finetune-config: the trainer starts from the incoming weights, not a fresh init."""
    src = tmp_path / "pruned.safetensors"
    start = randomize(repsr.create_model("bicubic_pp", scale=3, channels=4), seed=2)
    save_model(start, src)
    config = tmp_path / "stage3.yaml"
    config.write_text(f"""model: {{arch: bicubic_pp, scale: 3, channels: 32, bias: false}}
data: {{train: ['{data_dir / "Set5"}'], val: ['{data_dir / "Set5"}'], val_max_images: 1}}
optim: {{loss: mse}}
train: {{iters: 2, batch_size: 2, patch_size: 16, lr: 1.0e-6, bn_switch: null, val_every: 0, log_every: 1,
        device: cpu}}
output: '{tmp_path / "run"}'
""")
    out = tmp_path / "final.safetensors"
    argv = ["prune", str(src), "--data", str(data_dir / "Set5"), "--target-channels", "4", "--val-images", "1",
            "--val-crop", "32", "--drop-bias", "--finetune-config", str(config), "-o", str(out)]
    assert main(argv) == 0
    final = load_model(out)
    assert not final.config.bias and final.config.channels == 4
    # lr 1e-6 for 2 steps: still the incoming weights (a fresh init would be far away), but trained.
    delta = (final.conv1.weight - start.conv1.weight).abs().max()
    assert 0 < delta < 1e-4
    assert (tmp_path / "run" / "model_latest.safetensors").is_file()


def test_a_killed_prune_run_resumes_to_the_result_of_an_uninterrupted_one(tmp_path: Path, data_dir: Path,
                                                                          monkeypatch, capsys):
    """--resume recomputes the pruning, reuses finished round fine-tunes and continues the final run from its
    checkpoint: the file equals the one of a run that never stopped; without --resume the folder is refused."""
    import repsr.prune.finetune as finetune

    src = tmp_path / "wide.safetensors"
    save_model(randomize(repsr.create_model("bicubic_pp", scale=3, channels=6), seed=3), src)
    config = tmp_path / "final.yaml"

    def argv(name: str, *extra: str) -> list[str]:
        config.write_text(f"""model: {{arch: bicubic_pp, scale: 3, channels: 6}}
data: {{train: ['{data_dir / "Set5"}'], val: []}}
optim: {{loss: mse}}
train: {{iters: 4, batch_size: 2, patch_size: 16, lr: 1.0e-3, bn_switch: null, val_every: 0, ckpt_every: 1,
        log_every: 1, device: cpu, threads: 1}}
output: '{tmp_path / name}'
""")
        return ["prune", str(src), "--data", str(data_dir / "Set5"), "--target-channels", "4", "--val-images", "1",
                "--val-crop", "32", "--finetune-iters", "2", "--drop-bias", "--finetune-config", str(config),
                "-o", str(tmp_path / f"{name}.safetensors"), *extra]

    assert main(argv("whole")) == 0
    real_train = finetune.train

    def killed_in_final_run(cfg, resume=False, pairs=None):
        if Path(cfg.output).name == "killed":  # the final run (rounds run in steps/NN-round)
            real_train(cfg, resume=resume, pairs=pairs, stop_at=2)
            raise KeyboardInterrupt
        return real_train(cfg, resume=resume, pairs=pairs)

    monkeypatch.setattr(finetune, "train", killed_in_final_run)
    assert main(argv("killed")) != 0  # Ctrl-C in the final run, after its checkpoint at iteration 2
    monkeypatch.setattr(finetune, "train", real_train)
    assert "interrupted" in capsys.readouterr().err
    assert main(argv("killed")) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(argv("killed", "--resume")) == 0
    assert "resuming from iteration 2" in capsys.readouterr().err
    whole, resumed = load_model(tmp_path / "whole.safetensors"), load_model(tmp_path / "killed.safetensors")
    assert not resumed.config.bias and resumed.config.channels == 4
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
