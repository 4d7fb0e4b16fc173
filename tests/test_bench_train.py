"""``repsr bench-train``: the side-by-side training-cost table (structure and errors; no timing asserted)."""

from __future__ import annotations

import json

from repsr.cli import main

TINY = ["--size", "M1C4", "--scale", "2", "--batch", "2", "--patch", "8", "--reps", "1", "--rounds", "1"]


def test_bench_train_reports_every_family_precision_and_phase(capsys):
    assert main(["bench-train", "--archs", "repsr", "ecbsr", "plain", *TINY, "--switch", "0.25", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {(r["arch"], r["precision"]): r for r in result["rows"]}
    assert set(rows) == {(a, p) for a in ("repsr", "ecbsr", "plain") for p in ("fp32", "bf16")}
    for r in rows.values():
        assert all(r[k] > 0 for k in ("before_ms", "after_branch_ms", "after_merged_ms", "ratio", "ratio_branch"))
    repsr = rows[("repsr", "fp32")]  # the run mean weighs the two phases by the switch point
    assert abs(repsr["mean_merged_ms"] - (0.25 * repsr["before_ms"] + 0.75 * repsr["after_merged_ms"])) < 1e-9
    ecb = rows[("ecbsr", "fp32")]  # a BN-free family has one phase
    assert ecb["before_ms"] == ecb["after_branch_ms"] == ecb["mean_branch_ms"]
    assert "switch at 0.25" in result["setup"]


def test_bench_train_table_and_bad_arguments(capsys):
    assert main(["bench-train", "--archs", "plain", *TINY]) == 0
    out = capsys.readouterr().out
    assert "| plain | fp32 |" in out and "| plain | bf16 |" in out
    assert main(["bench-train", "--archs", "compact", *TINY]) == 2
    assert "not a training-time" in capsys.readouterr().err
    assert main(["bench-train", "--size", "big", *TINY[2:]]) == 2
    assert main(["bench-train", "--switch", "1.5", *TINY]) == 2
