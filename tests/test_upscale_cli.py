"""``repsr upscale`` end to end: folders, bit depths, gray, alpha, bad files, tiles, backends, sample."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import repsr
from repsr import cli


@pytest.fixture(autouse=True)
def _only_upscale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", ("upscale",))  # other commands may be mid-development


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "x2.safetensors"
    repsr.save_model(repsr.reparameterize(repsr.create_model("repsr", scale=2, blocks=2, channels=8,
                                                             zero_init_tail=False).eval()), path)
    return path


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    _write(src / "rgb16.png", rng.integers(0, 65535, (13, 11, 3), dtype=np.uint16))
    _write(src / "sub" / "rgba.png", rng.integers(0, 255, (10, 12, 4), dtype=np.uint8))
    _write(src / "sub" / "deeper" / "gray.jpg", rng.integers(0, 255, (9, 7), dtype=np.uint8))
    _write(src / "one.webp", np.full((1, 1, 3), 128, np.uint8))
    (src / "text.png").write_text("this is not an image")
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 255, 300, dtype=np.uint8)))
    (src / "truncated.png").write_bytes((src / "rgb16.png").read_bytes()[:120])
    return src


def test_folder_keeps_names_formats_and_skips_bad_files(folder: Path, model_file: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert cli.main(["upscale", str(folder), "-o", str(out), "--model", str(model_file)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and all(name in err for name in ("text.png", "corrupt.jpg", "truncated.png"))
    rgb16 = cv2.imread(str(out / "rgb16.png"), cv2.IMREAD_UNCHANGED)
    assert rgb16.dtype == np.uint16 and rgb16.shape == (26, 22, 3)
    rgba = cv2.imread(str(out / "sub" / "rgba.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (20, 24, 4)
    alpha_in = cv2.imread(str(folder / "sub" / "rgba.png"), cv2.IMREAD_UNCHANGED)[:, :, 3] / 255.0
    expected = np.clip(cv2.resize(alpha_in.astype(np.float32), (24, 20), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert np.abs(rgba[:, :, 3] - np.rint(expected * 255)).max() <= 1  # alpha by bicubic, not the net
    assert cv2.imread(str(out / "sub" / "deeper" / "gray.jpg"), cv2.IMREAD_UNCHANGED).ndim == 2
    assert cv2.imread(str(out / "one.webp")).shape == (2, 2, 3)


def test_tiles_backend_and_outscale_agree(model_file: Path, tmp_path: Path) -> None:
    src = tmp_path / "img.png"
    _write(src, np.random.default_rng(1).integers(0, 255, (37, 29, 3), dtype=np.uint8))
    runs = {"full": [], "tiled": ["-t", "8"], "ort": ["--backend", "onnxruntime"]}
    images = {}
    for name, extra in runs.items():
        target = tmp_path / f"{name}.png"
        assert cli.main(["upscale", str(src), "-o", str(target), "--model", str(model_file), *extra]) == 0
        images[name] = cv2.imread(str(target)).astype(int)
    assert images["full"].shape == (74, 58, 3)
    assert np.array_equal(images["tiled"], images["full"])
    assert np.abs(images["ort"] - images["full"]).max() <= 1
    assert cli.main(["upscale", str(src), "-o", str(tmp_path / "s3.png"), "--model", str(model_file), "-s", "3"]) == 0
    assert cv2.imread(str(tmp_path / "s3.png")).shape == (111, 87, 3)


def test_sample_prints_what_it_did(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sample_x2.png"
    assert cli.main(["upscale", "--sample", "-o", str(target), "--model", str(model_file)]) == 0
    said = capsys.readouterr().out
    assert "256x192 -> 512x384" in said and "x2.safetensors" in said and str(target) in said
    assert cv2.imread(str(target)).shape == (384, 512, 3)


@pytest.mark.parametrize("argv, message", [
    (["nope.png", "-o", "x.png"], "no such file"),
    (["{src}", "-o", "x.png", "--model", "no-such-model"], "neither a file nor a shipped model"),
    (["{src}", "-o", "{src}", "--model", "{model}"], "overwrite the input"),
    (["{src}", "-o", "x.png", "--model", "{model}", "--device", "cuda"], "CUDA"),
    (["{src}", "-o", "x.png", "--model", "{model}", "-t", "-1"], "--tile"),
])
def test_user_errors_are_one_line(argv: list[str], message: str, model_file: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    if message == "CUDA" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    src = tmp_path / "a.png"
    _write(src, np.zeros((4, 4, 3), np.uint8))
    args = [a.format(src=src, model=model_file) for a in argv]
    assert cli.main(["upscale", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
