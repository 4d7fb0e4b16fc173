"""The study runner trains variants at equal budgets, reuses finished ones and writes its report."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from repsr.cli import main
from repsr.errors import ConfigError
from repsr.study import load_study


def _study(tmp_path, data_dir, variants):
    train = tmp_path / "hr"
    train.mkdir()
    for name in ("baby.png", "bird.png"):
        shutil.copy(data_dir / "Set5" / "HR" / name, train / name)
    base = {
        "model": {"arch": "plain", "scale": 2, "blocks": 1, "channels": 4},
        "data": {"train": [str(train)], "val": [str(data_dir / "Set5")], "val_max_images": 1},
        "train": {"iters": 6, "batch_size": 2, "patch_size": 12, "val_every": 3, "ckpt_every": 3,
                  "log_every": 3, "bn_calib_batches": 2},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    study = {
        "name": "tiny", "base": str(tmp_path / "base.yaml"), "output": str(tmp_path / "runs"),
        "report": str(tmp_path / "report"), "eval_sets": [str(data_dir / "Set5")], "bench_size": "24x16",
        "bench_reps": 1, "variants": variants,
        "artifacts": {"baseline": "bn", "fixed": "bn_switch", "crops": 1, "crop_size": 32},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


VARIANTS = [
    {"name": "bn", "set": ["model.arch=plain_bn", "train.bn_switch=null"], "label": "plain+BN"},
    {"name": "bn_switch", "set": ["model.arch=plain_bn", "train.bn_switch=0.5"], "label": "plain+BN, switch"},
]


def test_study_trains_every_variant_and_writes_report(tmp_path, data_dir, capsys):
    path = _study(tmp_path, data_dir, VARIANTS)
    assert main(["study", str(path)]) == 0
    summary = json.loads((tmp_path / "report" / "results.json").read_text())
    rows = {r["name"]: r for r in summary["variants"]}
    assert set(rows) == {"bn", "bn_switch"}
    for row in rows.values():
        assert row["iters"] == 6 and not row["diverged"]
        assert row["params_merged"] == 9 * 3 * 4 + 4 + 4 + (9 * 4 * 4 + 4 + 4) + 9 * 4 * 12 + 12
        assert row["params_train"] > row["params_merged"]
        assert 10 < row["scores"]["Set5"]["psnr"] < 60 and len(row["per_image"]["Set5"]) == 5
        assert row["curve"] and row["merged_ms"] > 0 and row["ms_per_iter"] > 0
        assert row["curve"][-1]["seconds"] == pytest.approx(6 * row["ms_per_iter"] / 1000)
    refs = {r["name"]: r for r in summary["references"]}
    assert refs["bicubic"]["scores"]["Set5"]["psnr"] == pytest.approx(33.67, abs=0.02)
    report = (tmp_path / "report" / "results.md").read_text()
    assert "plain+BN, switch" in report and "bicubic" in report
    assert (tmp_path / "report" / "psnr_vs_speed.png").stat().st_size > 1000
    artifacts = json.loads((tmp_path / "report" / "artifacts.json").read_text())
    assert len(artifacts) == 5 and all("smooth_err_baseline" in a for a in artifacts)
    assert len(list((tmp_path / "report").glob("artifacts_1_*.png"))) == 1


def test_finished_variants_are_not_retrained(tmp_path, data_dir, capsys):
    path = _study(tmp_path, data_dir, VARIANTS[:1] + [{"name": "bn_switch", "set": ["model.arch=plain_bn"]}])
    assert main(["study", str(path), "--only", "bn"]) == 0
    result = tmp_path / "runs" / "bn" / "result.json"
    stamp = result.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["study", str(path)]) == 0
    assert result.stat().st_mtime_ns == stamp
    assert "[bn] finished earlier" in capsys.readouterr().out


def test_a_study_continues_from_committed_results_when_run_folders_are_gone(tmp_path, data_dir, capsys):
    """A later session on a fresh machine has the report's small JSON copies, not the run folders."""
    path = _study(tmp_path, data_dir, VARIANTS)
    assert main(["study", str(path), "--only", "bn"]) == 0
    committed = tmp_path / "report" / "variants" / "bn.json"
    assert json.loads(committed.read_text())["name"] == "bn"
    shutil.rmtree(tmp_path / "runs")
    capsys.readouterr()
    assert main(["study", str(path), "--report-only"]) == 0  # a report of what is finished, nothing trained
    assert "[bn_switch] not run yet" in capsys.readouterr().out and not (tmp_path / "runs" / "bn_switch").exists()
    partial = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [r["name"] for r in partial["variants"]] == ["bn"] and partial["references"]
    assert main(["study", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[bn] finished earlier" in out and "[bn_switch] training" in out
    assert not (tmp_path / "runs" / "bn").exists()  # reused, not retrained
    rows = {r["name"]: r for r in json.loads((tmp_path / "report" / "results.json").read_text())["variants"]}
    assert rows["bn"]["merged_ms"] > 0 and rows["bn"]["ms_per_iter"] > 0  # timed from its config
    assert (tmp_path / "report" / "variants" / "bn_switch.json").is_file()


def test_study_file_errors_are_one_line(tmp_path, data_dir):
    path = _study(tmp_path, data_dir, [{"name": "a"}, {"name": "a"}])
    with pytest.raises(ConfigError, match="unique"):
        load_study(path)
    (tmp_path / "t").mkdir()
    racing = _study(tmp_path / "t", data_dir, VARIANTS)
    racing.write_text(racing.read_text() + "time_target: ECB\n")  # no variant is labelled ECB
    with pytest.raises(ConfigError, match="'time_target' must name labels of variants"):
        load_study(racing)
    path.write_text(path.read_text().replace("variants:", "variantz:"))
    with pytest.raises(ConfigError, match="unknown key 'variantz'"):
        load_study(path)


def _row(label: str, psnr: float, diverged: str = "") -> dict:
    return {"label": label, "diverged": diverged, "scores": {"Set5": {"psnr": psnr, "ssim": 0.9}}}


def test_seed_table_averages_seeds_and_marks_only_differences_beyond_two_sd():
    from repsr.study.report import mean_sd, seed_table

    rows = [_row("A", 30.0), _row("A", 30.2), _row("A", 30.1),
            _row("B", 30.5), _row("B", 30.6), _row("B", 30.55),  # +0.45 dB, sd 0.05-0.1: real
            _row("C", 30.15), _row("C", 30.05),                  # +0.0, within noise
            _row("D", 31.0),                                     # one seed: never marked
            _row("E", 99.0, diverged="nan loss")]                # diverged rows are left out
    table = seed_table({"variants": rows})
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert set(lines) == {"A", "B", "C", "D"}
    mean, sd = mean_sd([30.0, 30.2, 30.1])
    assert f"{mean:.3f} ± {sd:.3f}" in lines["A"] and abs(sd - 0.1) < 1e-12
    assert lines["A"].count("| 3 |") == 1
    assert "+0.450 *" in lines["B"]
    assert "0.000 |" in lines["C"] and "*" not in lines["C"]
    assert "+0.900 |" in lines["D"] and "*" not in lines["D"]


def _timed(label: str, ms: float, psnrs: list[float]) -> dict:
    curve = [{"iter": 1000 * (i + 1), "psnr": v, "seconds": ms * (i + 1)} for i, v in enumerate(psnrs)]
    return _row(label, psnrs[-1]) | {"curve": curve, "ms_per_iter": ms}


def test_time_to_quality_races_seed_means_to_the_target_settings_final_quality():
    from repsr.study.report import mean_curve, seconds_to_reach, time_to_quality_table

    slow = [_timed("ECB", 200.0, [27.0, 28.0, 29.0]), _timed("ECB", 200.0, [27.2, 28.2, 29.2])]  # final 29.1
    fast = [_timed("RepSR", 100.0, [28.0, 29.6, 30.0]), _timed("RepSR", 100.0, [28.0, 29.8, 30.2])]
    curve = mean_curve(fast)
    assert curve == [(100.0, 28.0), (200.0, pytest.approx(29.7)), (300.0, pytest.approx(30.1))]
    # 29.1 dB lies 1.1/1.7 of the way from 28.0 (100 s) to 29.7 (200 s)
    assert seconds_to_reach(curve, 29.1) == pytest.approx(100 + 100 * 1.1 / 1.7)
    assert seconds_to_reach(curve, 27.0) == 100.0 and seconds_to_reach(curve, 31.0) is None
    table = time_to_quality_table({"variants": slow + fast + [_timed("plain", 50.0, [27.0, 27.5])],
                                   "time_target": "ECB"})
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "29.100" in rows["ECB"] and "1.00x" in rows["ECB"]  # the target reaches itself at its end
    assert f"{(100 + 100 * 1.1 / 1.7) / 600:.2f}x" in rows["RepSR"]
    assert "not reached" in rows["plain"]
    assert time_to_quality_table({"variants": slow, "time_target": ""}) == ""
    from repsr.study.report import seed_table

    seeds = seed_table({"variants": slow + fast})  # the final validation PSNR is a column of its own
    assert "validation PSNR mean ± sd" in seeds and "30.100 ± 0.141" in seeds
    against = seed_table({"variants": slow + fast}, baseline="RepSR")
    assert "Δvalidation vs RepSR" in against and "| RepSR | 2 |" in against
