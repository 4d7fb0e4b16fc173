"""``repsr bench`` computes its rows and ratios (no timing assertions: speed is not a test)."""

from __future__ import annotations

import json

import pytest
import torch

import repsr
import repsr.cpu
from repsr import cli
from repsr.bench import conv_gflop, parse_sizes, peak_rates, precision_of, run_bench
from repsr.errors import UserError


def test_conv_flops_are_counted_analytically() -> None:
    model = repsr.reparameterize(repsr.create_model("repsr", scale=2, blocks=1, channels=4,
                                                    zero_init_tail=False).eval())
    h, w = 5, 7
    macs = h * w * 9 * (3 * 4 + 4 * 4 + 4 * 12)  # head 3->4, body 4->4, tail 4->3*2*2
    assert conv_gflop(model, torch.rand(1, 3, h, w)) == pytest.approx(2 * macs / 1e9)


def test_bench_rows_and_ratios() -> None:
    result = run_bench("repsr:M4C8", "24x16x2,20x12x3", threads=[1], warmup=0, reps=1, onnx=False,
                       with_compile=False)
    assert result.matmul_gflops[1] > 0
    names = [r.name for r in result.rows if r.size == "24x16x2"]
    assert names[:3] == ["training graph fp32", "merged fp32 NCHW", "merged fp32 channels_last"]
    assert "bicubic OpenCV uint8" in names and "bicubic OpenCV fp32" in names
    for row in result.rows:
        assert row.ms > 0 and row.mpix_per_s > 0 and row.x_bicubic is not None and row.x_bicubic > 0
        if row.name.startswith(("merged", "training")):
            assert row.gflop_per_s is not None
            assert row.pct_matmul == pytest.approx(100 * row.gflop_per_s / result.matmul_gflops[1])
    assert result.peak_gflops[1]["fp32"] == result.matmul_gflops[1]
    train, merged = (r for r in result.rows[:2])
    assert train.gflop is not None and merged.gflop is not None
    assert train.gflop > merged.gflop  # the training graph does more arithmetic


def test_x_eager_is_the_eager_nchw_time_over_each_network_rows_time_at_its_own_size() -> None:
    result = run_bench("repsr:M4C8", "24x16x2,20x12x3", threads=[1], warmup=0, reps=1, onnx=False,
                       with_compile=False)
    for size in ("24x16x2", "20x12x3"):
        rows = [r for r in result.rows if r.size == size]
        eager = next(r.ms for r in rows if r.name == "merged fp32 NCHW")
        for row in rows:
            if row.gflop is None:  # bicubic: not a network
                assert row.x_eager is None
            else:
                assert row.x_eager == pytest.approx(eager / row.ms)


def test_several_models_are_timed_side_by_side_each_against_its_own_eager_row(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = run_bench(["repsr:M4C8", "bicubic_pp"], "24x16x3", threads=[1], warmup=0, reps=1, onnx=False,
                       with_compile=False)
    assert result.model == "repsr:M4C8, bicubic_pp"
    assert {r.model for r in result.rows} == {"repsr:M4C8", "bicubic_pp", ""}
    assert all(r.model == "" for r in result.rows if r.name.startswith("bicubic "))
    for spec in ("repsr:M4C8", "bicubic_pp"):
        rows = [r for r in result.rows if r.model == spec]
        eager = next(r.ms for r in rows if r.name == "merged fp32 NCHW")
        assert all(r.x_eager == pytest.approx(eager / r.ms) for r in rows)
    bpp = next(r for r in result.rows if r.model == "bicubic_pp" and r.name == "merged fp32 NCHW")
    m4 = next(r for r in result.rows if r.model == "repsr:M4C8" and r.name == "merged fp32 NCHW")
    assert bpp.gflop != m4.gflop
    assert cli.main(["bench", "--model", "repsr:M1C4", "bicubic_pp", "--sizes", "16x12x3", "--reps", "1",
                     "--warmup", "0", "--threads", "1", "--no-onnx", "--no-compile"]) == 0
    assert "bicubic_pp: merged fp32 NCHW" in capsys.readouterr().out
    for extra in (["--folder", "."], ["--ntire-psnr", "26", "25"]):
        assert cli.main(["bench", "--model", "repsr:M1C4", "bicubic_pp", *extra]) == 2
        assert "single --model" in capsys.readouterr().err


def test_rows_are_held_to_the_peak_of_their_own_precision() -> None:
    assert [precision_of(n) for n in ("openvino bf16", "onnxruntime INT8", "merged fp16 channels_last",
                                      "torch.compile fp32", "ncnn fp32")] == ["bf16", "int8", "fp16", "fp32", "fp32"]
    peaks = peak_rates(torch.device("cpu"), 0, 2, n=256)
    assert peaks["fp32"] > 0 and ("bf16" in peaks) == repsr.cpu.has_native_bf16()


def test_bench_cli_json_with_bicubic_pp_and_errors(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", ("bench",))
    argv = ["bench", "--model", "bicubic_pp", "--sizes", "16x12x3", "--reps", "1", "--warmup", "0", "--json",
            "--no-compile", "--no-onnx"]
    assert cli.main(argv + ["--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["model", "device", "warmup", "reps", "cpu", "matmul_gflops", "peak_gflops", "rows"]
    assert list(result["matmul_gflops"]) == ["1"] and result["peak_gflops"]["1"]["fp32"] > 0
    rows = result["rows"]
    assert list(rows[0]) == ["size", "name", "threads", "ms", "mpix_per_s", "gflop", "gflop_per_s", "pct_matmul",
                             "precision", "x_bicubic", "setup_s", "x_eager", "model"]  # earlier keys unchanged
    assert rows[0]["name"] == "merged fp32 NCHW" and rows[0]["gflop"] > 0 and rows[0]["x_eager"] == 1.0
    assert cli.main(["bench", "--sizes", "16x12"]) == 2
    assert "WIDTHxHEIGHTxSCALE" in capsys.readouterr().err
    with pytest.raises(UserError):
        parse_sizes("0x5x2")
