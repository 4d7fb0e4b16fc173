"""``repsr eval`` end to end: the published bicubic table, models, and the inputs users really have."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from repsr import cli
from repsr.config import ModelConfig
from repsr.data import imresize, modcrop
from repsr.data.datasets import read_uint8
from repsr.evaluate import ComparedSummary, compare, evaluate, evaluate_many
from repsr.imageio import write_image
from repsr.metrics import psnr, ssim
from repsr.models import build_model
from repsr.weights import save_model

# Bicubic rows of EDSR/RCAN-era tables: (PSNR, SSIM) on Y, crop_border = scale.
PUBLISHED = {
    2: {"Set5": (33.66, 0.9299), "Set14": (30.24, 0.8688), "B100": (29.56, 0.8431)},
    3: {"Set5": (30.39, 0.8682), "Set14": (27.55, 0.7742), "B100": (27.21, 0.7385)},
    4: {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027), "B100": (25.96, 0.6675)},
}


def eval_cli(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``repsr eval`` through ``cli.main`` with only this command registered."""
    monkeypatch.setattr(cli, "COMMANDS", ("eval",))
    code = cli.main(["eval", *argv, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_published_table(data_dir, monkeypatch, capsys, scale):
    sets = ["Set5", "Set14"] + (["B100"] if scale == 4 else [])
    code, out, err = eval_cli(monkeypatch, capsys, "--model", "bicubic", "--scale", str(scale), "--json",
                              "--data", *[str(data_dir / s) for s in sets])
    assert code == 0, err
    got = json.loads(out)
    assert list(got) == sets
    for name in sets:
        want_psnr, want_ssim = PUBLISHED[scale][name]
        assert got[name]["psnr"] == pytest.approx(want_psnr, abs=0.02), name
        assert got[name]["ssim"] == pytest.approx(want_ssim, abs=0.001), name
        assert got[name]["images"] == {"Set5": 5, "Set14": 14, "B100": 100}[name]


def test_table_on_stdout(data_dir, monkeypatch, capsys):
    code, out, _ = eval_cli(monkeypatch, capsys, "-m", "bicubic", "-s", "4", "-d", str(data_dir / "Set5"))
    assert code == 0
    assert "Set5" in out and "28.43" in out and "0.8111" in out


def _zero_compact(scale: int) -> torch.nn.Module:
    """A merged net whose convs are all zero: its output is exactly the nearest-neighbour upscale."""
    model = build_model(ModelConfig(arch="compact", scale=scale, blocks=1, channels=4))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model.eval()


def test_weights_file_scores_what_the_model_outputs(data_dir, tmp_path, monkeypatch, capsys):
    weights = tmp_path / "nearest.safetensors"
    save_model(_zero_compact(2), weights)
    code, out, err = eval_cli(monkeypatch, capsys, "-m", str(weights), "-d", str(data_dir / "Set5"),
                              "--json", "--save", str(tmp_path / "sr"))
    assert code == 0, err
    expected_p, expected_s = [], []
    for name in ("baby", "bird", "butterfly", "head", "woman"):
        hr = modcrop(read_uint8(data_dir / "Set5" / "HR" / f"{name}.png"), 2)
        lr = read_uint8(data_dir / "Set5" / "LR_bicubic" / "X2" / f"{name}x2.png")
        nearest = lr.repeat(2, axis=0).repeat(2, axis=1)
        np.testing.assert_array_equal(read_uint8(tmp_path / "sr" / "Set5" / f"{name}.png"), nearest)
        expected_p.append(psnr(nearest, hr, 2))
        expected_s.append(ssim(nearest, hr, 2))
    got = json.loads(out)["Set5"]
    assert got["psnr"] == pytest.approx(np.mean(expected_p), abs=1e-9)
    assert got["ssim"] == pytest.approx(np.mean(expected_s), abs=1e-9)
    code, _, err = eval_cli(monkeypatch, capsys, "-m", str(weights), "-s", "4", "-d", str(data_dir / "Set5"))
    assert code == 2 and err.strip() == "error: the model upscales x2, not x4"


def _odd_inputs(data_dir: Path, folder: Path) -> np.ndarray:
    """16-bit, gray and RGBA versions of one real image, plus a corrupt PNG; returns the 8-bit RGB."""
    rgb = read_uint8(data_dir / "Set5" / "HR" / "head.png")
    write_image(folder / "deep.png", rgb.astype(np.uint16) * 257)
    write_image(folder / "gray.png", rgb[:, :, 1])
    write_image(folder / "alpha.png", np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], 2))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return rgb


def test_sixteen_bit_gray_rgba_score_sensibly(data_dir, tmp_path, monkeypatch, capsys):
    rgb = _odd_inputs(data_dir, tmp_path)
    want = {}
    for name, img in (("deep", rgb), ("alpha", rgb), ("gray", rgb[:, :, 1])):
        hr = modcrop(img, 3)
        sr = imresize(imresize(hr, 1 / 3), 3)
        want[name] = (psnr(sr, hr, 3), ssim(sr, hr, 3))
    for name, (p, s) in want.items():
        code, out, err = eval_cli(monkeypatch, capsys, "-m", "bicubic", "-s", "3", "--json",
                                  "-d", str(tmp_path / f"{name}.png"))
        assert code == 0, err
        assert json.loads(out) == {name: {"psnr": pytest.approx(p, abs=1e-9),
                                          "ssim": pytest.approx(s, abs=1e-9), "images": 1}}


def test_corrupt_file_is_a_one_line_error(data_dir, tmp_path, monkeypatch, capsys):
    _odd_inputs(data_dir, tmp_path)
    code, out, err = eval_cli(monkeypatch, capsys, "-m", "bicubic", "-s", "2", "-d", str(tmp_path / "broken.png"))
    assert code == 2 and out == ""
    assert err.startswith("error: broken: no image could be evaluated") and err.count("\n") == 1
    assert "Traceback" not in err


def test_folder_with_a_corrupt_file_skips_it_and_exits_1(data_dir, tmp_path, monkeypatch, capsys):
    _odd_inputs(data_dir, tmp_path / "mixed")
    code, out, err = eval_cli(monkeypatch, capsys, "-m", "bicubic", "-s", "2", "--json", "-d", str(tmp_path / "mixed"))
    assert code == 1
    assert json.loads(out)["mixed"]["images"] == 3
    assert "warning: skipped mixed/broken" in err and "Traceback" not in err
    direct = evaluate(None, [tmp_path / "mixed"], 2, progress=False)["mixed"]
    assert [r.name for r in direct.images] == ["alpha", "deep", "gray"]
    assert [name for name, _ in direct.skipped] == ["broken"]


def test_user_errors_are_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = eval_cli(monkeypatch, capsys, "-m", "bicubic", "-d", str(tmp_path))
    assert code == 2 and err == "error: --scale is required with --model bicubic\n"
    code, _, err = eval_cli(monkeypatch, capsys, "-m", "bicubic", "-s", "2", "-d", str(tmp_path / "nope"))
    assert code == 2 and err.startswith("error: ") and "no such file" in err
    code, _, err = eval_cli(monkeypatch, capsys, "-m", str(tmp_path / "missing.pth"), "-d", str(tmp_path))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_repsr_eval_subprocess(data_dir):
    try:
        cli.build_parser()
    except ModuleNotFoundError as exc:
        pytest.skip(f"repsr CLI not complete yet (another command module is missing: {exc.name})")
    proc = subprocess.run([sys.executable, "-m", "repsr", "eval", "--model", "bicubic", "--scale", "2",
                           "--data", str(data_dir / "Set5"), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Set5"]["psnr"] == pytest.approx(33.66, abs=0.02)


def test_eval_bgr_flag_scores_official_bicubic_pp_weights_in_their_channel_order(data_dir, peers_dir, capsys):
    import json

    from repsr.cli import main

    weights = str(peers_dir / "bicubic_pp_x3.pth")
    scores = {}
    for flag in ([], ["--bgr"]):
        assert main(["eval", "--model", weights, "--data", str(data_dir / "Set5"), "--json", "--quiet", *flag]) == 0
        scores[bool(flag)] = json.loads(capsys.readouterr().out)["Set5"]["psnr"]
    assert scores[True] > scores[False] + 0.05
    assert scores[True] > 30.39  # above MATLAB bicubic x3 on Set5


def test_json_is_strict_when_sr_equals_hr(tmp_path, capsys):
    """A PSNR of +inf (identical images) is written as null, never as the non-JSON token Infinity."""
    import json

    import numpy as np
    from PIL import Image

    from repsr.cli import main

    hr = tmp_path / "flat" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(hr / "flat.png")
    assert main(["eval", "--model", "bicubic", "--scale", "2", "--data", str(tmp_path / "flat"), "--json",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Infinity" not in out
    record = json.loads(out)["flat"]
    assert record["psnr"] is None and record["ssim"] == 1.0 and record["images"] == 1


def test_side_by_side_scores_each_model_as_it_scores_alone_with_differences_to_the_first(
        data_dir, peers_dir, monkeypatch, capsys):
    peer = str(peers_dir / "etds_ecbsr_m4c16_x4.pth")
    code, out, err = eval_cli(monkeypatch, capsys, "-m", "repsr-m4c16-x4", "bicubic", peer, "--json",
                              "-d", str(data_dir / "Set5"))
    assert code == 0, err
    got = json.loads(out)
    assert got["scale"] == 4 and got["channel"] == "y" and got["reference"] == "repsr-m4c16-x4"
    models = got["models"]
    assert list(models) == ["repsr-m4c16-x4", "bicubic", "etds_ecbsr_m4c16_x4.pth"]
    assert models["etds_ecbsr_m4c16_x4.pth"]["Set5"]["psnr"] == pytest.approx(30.89, abs=0.005)
    assert models["bicubic"]["Set5"]["psnr"] == pytest.approx(PUBLISHED[4]["Set5"][0], abs=0.02)
    first = models["repsr-m4c16-x4"]["Set5"]
    assert first["psnr_diff"] == 0.0 and first["ssim_diff"] == 0.0
    for name, sets in models.items():
        alone_code, alone, _ = eval_cli(monkeypatch, capsys, "-m", peer if name.endswith(".pth") else name,
                                        "-s", "4", "--json", "-d", str(data_dir / "Set5"))
        assert alone_code == 0 and json.loads(alone)["Set5"] == {k: sets["Set5"][k] for k in ("psnr", "ssim", "images")}
        assert sets["Set5"]["psnr_diff"] == pytest.approx(sets["Set5"]["psnr"] - first["psnr"], abs=1e-12)
        assert sets["Set5"]["ssim_diff"] == pytest.approx(sets["Set5"]["ssim"] - first["ssim"], abs=1e-12)


def test_compare_holds_each_model_to_the_first_in_typed_results_that_json_prints_as_documented(data_dir):
    model = build_model(ModelConfig(arch="repsr", scale=2, blocks=1, channels=4)).eval()
    results = evaluate_many({"net": model, "bicubic": None}, [data_dir / "Set5"], 2, progress=False)
    comparison = compare(results, 2, y_channel=False)
    assert comparison.reference == "net" and comparison.channel == "rgb" and comparison.scale == 2
    net, bicubic = comparison.models["net"]["Set5"], comparison.models["bicubic"]["Set5"]
    assert net == ComparedSummary(results["net"]["Set5"].psnr, results["net"]["Set5"].ssim, 5, 0.0, 0.0)
    assert bicubic.psnr_diff == results["bicubic"]["Set5"].psnr - results["net"]["Set5"].psnr
    assert bicubic.ssim_diff == results["bicubic"]["Set5"].ssim - results["net"]["Set5"].ssim
    assert list(asdict(comparison)) == ["scale", "channel", "reference", "models"]
    assert list(asdict(bicubic)) == ["psnr", "ssim", "images", "psnr_diff", "ssim_diff"]
    assert list(asdict(results["net"]["Set5"].summary())) == ["psnr", "ssim", "images"]


def test_side_by_side_table_has_a_row_per_model_and_set_with_the_difference_to_the_first(
        data_dir, peers_dir, monkeypatch, capsys):
    peer = str(peers_dir / "etds_ecbsr_m4c16_x4.pth")
    code, out, err = eval_cli(monkeypatch, capsys, "-m", "bicubic", "-m", peer, "-s", "4",
                              "-d", str(data_dir / "Set5"), str(data_dir / "Set14"))
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("│") and ("bicubic" in line or "etds_ecbsr" in line)]
    assert len(rows) == 4
    assert "28.43" in rows[0] and "30.89" in rows[1] and "+2.46" in rows[1]


def test_models_of_different_scales_are_a_one_line_error(peers_dir, data_dir, monkeypatch, capsys):
    code, out, err = eval_cli(monkeypatch, capsys, "-m", "repsr-m4c16-x4", "repsr-m4c16-x2",
                              "-d", str(data_dir / "Set5"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: the models upscale by different factors") and "repsr-m4c16-x2 x2" in err
    code, _, err = eval_cli(monkeypatch, capsys, "-m", "bicubic", str(peers_dir / "etds_ecbsr_m4c16_x4.pth"),
                            "-s", "2", "-d", str(data_dir / "Set5"))
    assert code == 2 and err == "error: etds_ecbsr_m4c16_x4.pth upscales x4, not x2\n"
