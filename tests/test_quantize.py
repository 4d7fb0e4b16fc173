"""INT8 export: range equalization is exact, the quantized shipped nets stay close to fp32 on real
images, and ``repsr quantize`` / ``eval`` / ``bench`` / ``upscale`` run the files end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import numpy as np
import onnx
import pytest
import torch

import repsr
import repsr.cpu
from repsr import cli
from repsr.bench import run_bench
from repsr.commands.quantize import MAX_DROP
from repsr.errors import UserError
from repsr.evaluate import evaluate
from repsr.export.equalize import equalize_ranges
from repsr.export.quantize import (
    ACTIVATIONS,
    INT16_MAX,
    KEEP_FLOAT,
    METHODS,
    TARGETS,
    QuantOptions,
    TargetName,
    calibration_batches,
    pair_sum_bound,
    parse_keep_float,
    quantization_of,
    quantize_model,
)
from repsr.imageio import read_image, write_image
from repsr.inference import load_runner
from repsr.inference.engines.onnxruntime import OnnxUpscaler
from tests.helpers import randomize


def _merged(scale: int = 4, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = repsr.create_model("repsr", scale=scale, blocks=3, channels=8, zero_init_tail=False).eval()
    return repsr.reparameterize(randomize(model, seed)).eval()


def test_equalized_net_computes_the_same_function_with_equal_channel_ranges() -> None:
    model = _merged().double()  # float64: the identity is exact, only summation order may differ
    x = torch.rand(4, 3, 19, 23, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    equalized = equalize_ranges(model, x)
    torch.testing.assert_close(equalized(x), model(x), rtol=0, atol=1e-11)
    ranges = []
    equalized.body[2].register_forward_hook(lambda _m, _i, out: ranges.append(out.abs().amax(dim=(0, 2, 3))))
    with torch.no_grad():
        equalized(x)
    assert float(ranges[0].max() / ranges[0].min()) == pytest.approx(1.0, abs=1e-4)
    assert not torch.equal(equalized.body[0].weight, model.body[0].weight)  # it did change the weights
    assert torch.equal(model.body[0].weight, _merged().double().body[0].weight)  # and left the original alone


def test_bicubic_pp_is_left_unchanged_by_equalization() -> None:
    model = repsr.create_model("bicubic_pp", scale=3, channels=8).eval()
    out = equalize_ranges(model, torch.rand(1, 3, 16, 16))
    assert all(torch.equal(a, b) for a, b in zip(out.state_dict().values(), model.state_dict().values(), strict=True))


@pytest.fixture(scope="module")
def calib(data_dir: Path) -> list[Path]:
    return [data_dir / "BSD200"]


def _drop(data_dir: Path, scale: int, calib: list[Path], options: QuantOptions, target: Path,
          model: torch.nn.Module | None = None) -> float:
    model = model if model is not None else load_runner(f"repsr-m4c16-x{scale}", network=True)
    quantize_model(model, target, calibration_batches(calib, model.config, images=8, crop=48), options)
    sets = [data_dir / "Set5"]
    fp32 = evaluate(model, sets, scale, progress=False)["Set5"].psnr
    return fp32 - evaluate(OnnxUpscaler(target, threads=1), sets, scale, progress=False)["Set5"].psnr


def _unbalanced(scale: int) -> torch.nn.Module:
    """The shipped net with the same function but channel ranges 50x apart after its second body conv.

    ``prelu(s z) = s prelu(z)`` for ``s > 0``: scaling a conv's output channels by ``s`` and the next
    conv's input channels by ``1 / s`` changes no output, only the ranges INT8 has to share.
    """
    model = load_runner(f"repsr-m4c16-x{scale}", network=True)
    first, second = model.body[4], model.body[6]
    s = torch.ones(first.out_channels)
    s[::2] = 8.0
    s[1::4] = 0.16
    with torch.no_grad():
        first.weight.mul_(s.reshape(-1, 1, 1, 1))
        first.bias.mul_(s)
        second.weight.div_(s.reshape(1, -1, 1, 1))
    return model


def test_int8_shipped_x4_stays_within_a_tenth_of_a_db_on_set5(data_dir: Path, calib: list[Path],
                                                              tmp_path: Path) -> None:
    """Measured 0.04 dB (docs/deploy.md); 0.1 leaves room for the smaller calibration set here."""
    drop = _drop(data_dir, 4, calib, QuantOptions(), tmp_path / "x4.onnx")
    assert 0.0 <= drop < 0.1
    proto = onnx.load(str(tmp_path / "x4.onnx"))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in proto.graph.node}
    assert "uint8 activations" in (quantization_of(tmp_path / "x4.onnx") or "")


def test_range_equalization_undoes_channel_ranges_the_function_does_not_see(data_dir: Path, calib: list[Path],
                                                                            tmp_path: Path) -> None:
    """Channels 50x apart cost one shared INT8 scale dearly; equalization brings the drop back to the
    balanced net's (the v1 x2 file had such ranges, 6..82, naturally: 0.68 dB without, 0.19 with)."""
    balanced = _drop(data_dir, 2, calib, QuantOptions(keep_float=("tail",)), tmp_path / "b.onnx")
    naive = _drop(data_dir, 2, calib, QuantOptions(keep_float=("tail",), equalize=False), tmp_path / "n.onnx",
                  model=_unbalanced(2))
    equalized = _drop(data_dir, 2, calib, QuantOptions(keep_float=("tail",)), tmp_path / "e.onnx",
                      model=_unbalanced(2))
    assert naive > balanced + 0.1
    assert equalized < balanced + 0.05


def test_quantize_cli_reports_the_drop_and_the_file_runs_everywhere(data_dir: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "x4-int8.onnx"
    code = cli.main(["quantize", "repsr-m4c16-x4", "-o", str(target), "--calib", str(data_dir / "BSD200"),
                     "--calib-images", "4", "--calib-crop", "48", "--val", str(data_dir / "Set5")])
    out, err = capsys.readouterr()
    assert code == 0, err
    drop = float(next(line for line in out.splitlines() if line.startswith("Set5")).split()[-1])
    assert 0.0 <= drop < MAX_DROP  # 4 calibration crops: the quality bound is the test above's, with 8
    assert cli.main(["eval", "-m", str(target), "-d", str(data_dir / "Set5"), "--json", "--quiet"]) == 0
    int8_psnr = json.loads(capsys.readouterr().out)["Set5"]["psnr"]
    assert int8_psnr == pytest.approx(float(out.split("Set5")[1].split()[1]), abs=1e-3)
    image = tmp_path / "in.png"
    write_image(image, (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8))
    assert cli.main(["upscale", str(image), "-o", str(tmp_path / "out.png"), "--model", str(target)]) == 0
    assert read_image(tmp_path / "out.png").size == (120, 80)
    result = run_bench(str(target), "24x16x4", threads=[1], warmup=0, reps=1)
    assert "onnxruntime INT8" in [r.name for r in result.rows]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_only_the_vnni_target_can_saturate_a_pairwise_int16_sum(target: str, tmp_path: Path) -> None:
    """CPU-independent: x86 without VNNI sums u8 x s8 pairs in int16; the default and symmetric files must fit
    whatever the input, and the check must bite on full-range int8 weights (or it would prove nothing)."""
    model = _merged()
    batches = [np.random.default_rng(0).random((4, 3, 24, 24), dtype=np.float32)]
    quantize_model(model, tmp_path / "q.onnx", batches, QuantOptions(target=target))
    bound = pair_sum_bound(tmp_path / "q.onnx")
    assert (bound > INT16_MAX) == (not TARGETS[target].exact_everywhere)
    assert f"(target {target})" in (quantization_of(tmp_path / "q.onnx") or "")


def test_a_full_range_file_warns_on_a_cpu_without_vnni(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    batches = [np.random.default_rng(0).random((4, 3, 24, 24), dtype=np.float32)]
    for target in ("vnni", "any"):
        quantize_model(_merged(), tmp_path / f"{target}.onnx", batches, QuantOptions(target=target))
    monkeypatch.setattr(repsr.cpu, "sums_int8_exactly", lambda: False)
    OnnxUpscaler(tmp_path / "vnni.onnx")
    err = capsys.readouterr().err
    assert "saturate" in err and "--target any" in err and err.count("\n") == 1
    OnnxUpscaler(tmp_path / "any.onnx")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(repsr.cpu, "sums_int8_exactly", lambda: True)
    OnnxUpscaler(tmp_path / "vnni.onnx")
    assert capsys.readouterr().err == ""


def test_quantize_refuses_a_drop_above_max_drop_and_writes_nothing(data_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "x2-int8.onnx"
    code = cli.main(["quantize", "repsr-m4c16-x2", "-o", str(target), "--calib", str(data_dir / "BSD200"),
                     "--calib-images", "2", "--calib-crop", "32", "--val", str(data_dir / "Set5"),
                     "--max-drop", "0.001"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: INT8 loses") and "--max-drop" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_bench_has_an_int8_row_beside_fp32() -> None:
    names = [r.name for r in run_bench("repsr:M4C8", "24x16x2", threads=[1], warmup=0, reps=1).rows]
    assert names.index("onnxruntime INT8") == names.index("onnxruntime fp32") + 1


@pytest.mark.parametrize(("extra", "message"), [
    (["--calib", "{data}/Set5", "--val", "{data}/Set5"], "both a calibration and a validation set"),
    (["--calib", "{data}/nowhere"], "is not a folder"),
    (["--calib", "{data}/BSD200", "--keep-float", "middle"], "unknown --keep-float part"),
])
def test_quantize_user_errors_are_one_line(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           extra: list[str], message: str) -> None:
    argv = [a.replace("{data}", str(data_dir)) for a in extra]
    assert cli.main(["quantize", "repsr-m4c16-x4", "-o", str(tmp_path / "q.onnx"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "q.onnx").exists()


def test_option_spellings_are_their_types_and_keep_float_parses_in_the_order_given() -> None:
    assert METHODS == ("minmax", "entropy", "percentile") and ACTIVATIONS == ("uint8", "int8", "uint16", "int16")
    assert KEEP_FLOAT == ("tail", "head", "skip") and tuple(TARGETS) == get_args(TargetName)
    assert parse_keep_float(" head, tail ") == ("head", "tail") and parse_keep_float("none") == ()
    assert QuantOptions(keep_float=parse_keep_float("head,tail")).describe().endswith("float: head+tail")
    with pytest.raises(UserError, match="unknown --keep-float part 'middle'"):
        parse_keep_float("tail,middle")
    with pytest.raises(UserError, match="unknown INT8 target 'avx2'"):  # a caller without a type checker
        QuantOptions(target="avx2")


def test_output_must_be_onnx(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["quantize", "repsr-m4c16-x4", "-o", str(tmp_path / "q.pth"), "--calib",
                     str(data_dir / "BSD200")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
