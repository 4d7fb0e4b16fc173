"""Hostile input, generated at test time: every case ends in one ``error:`` line and a non-zero exit,
and leaves no input and no earlier output changed (issue #26's corpus)."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_train import make_tiny_set
from test_train_cli import overrides

from repsr import cli
from repsr.errors import OutputError
from repsr.imageio import write_image


def _one_error_line(err: str, *words: str) -> None:
    """Exactly one ``error:`` line (progress lines may precede it), no traceback, naming ``words``."""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in errors[0], errors[0]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_a_bomb_header_is_refused_before_decoding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = tmp_path / "bomb.png"
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    assert cli.main(["upscale", str(bomb), "-o", str(tmp_path / "out.png"), "--model", "repsr-m4c16-x2"]) == 1
    _one_error_line(capsys.readouterr().err, "bomb.png", "decompression bomb")
    assert not (tmp_path / "out.png").exists()


def test_a_raw_pickle_is_refused_in_one_line_without_torch_warnings(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import pickle

    weights = tmp_path / "evil.pth"
    weights.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    assert cli.main(["merge", str(weights), "-o", str(tmp_path / "m.safetensors")]) == 2
    _one_error_line(capsys.readouterr().err, "pickled Python objects")


@contextlib.contextmanager
def _small_tmpfs(tmp_path: Path, size: str = "256k") -> Iterator[Path]:
    """A real tiny filesystem where the test may mount one (root on Linux); else the test is skipped."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the fake-ENOSPC tests cover the same paths)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_merge_onto_a_full_disk_is_one_line_on_a_real_small_filesystem(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with _small_tmpfs(tmp_path) as disk:
        (disk / "filler").write_bytes(b"\0" * (250 << 10))
        for name in ("m.safetensors", "m.onnx"):
            assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(disk / name)]) == 2
            _one_error_line(capsys.readouterr().err, name, "no space left")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no partial or temporary file


def test_every_writer_reports_a_full_disk_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """safetensors, torch's zip writer and OpenCV each hide ENOSPC their own way; one helper names it."""
    import shutil

    from safetensors import SafetensorError

    import repsr.imageio
    import repsr.weights

    def full(*_a: object, **_k: object) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(repsr.weights, "save_file", full)
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(tmp_path / "m.safetensors")]) == 2
    _one_error_line(capsys.readouterr().err, "m.safetensors", "no space left")
    # OpenCV only returns False: the folder's free space says why
    monkeypatch.setattr(repsr.imageio.cv2, "imwrite", lambda *_a, **_k: False)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage._replace(free=4096))
    with pytest.raises(OutputError, match="out.png: cannot write .no space left"):
        write_image(tmp_path / "out.png", np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_set(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_set(data_dir, tmp_path_factory.mktemp("tiny") / "Tiny5")


def test_a_full_disk_at_a_checkpoint_keeps_the_old_one_and_says_to_resume(
        tiny_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors import SafetensorError

    import repsr.train.checkpoint as checkpoint

    out = tmp_path / "run"
    args = ["train", "configs/repsr.yaml", *overrides(tiny_set, out, "train.iters=4", "train.ckpt_every=2")]
    assert cli.main(args) == 0
    before = (out / "checkpoints" / "latest.safetensors").read_bytes()
    capsys.readouterr()

    def full(*_a: object, **_k: object) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint, "save_file", full)
    resumed = ["train", "configs/repsr.yaml", *overrides(tiny_set, out, "train.iters=8", "train.ckpt_every=2")]
    assert cli.main([*resumed, "--resume"]) == 2
    _one_error_line(capsys.readouterr().err, "no space left", "--resume", "intact")
    assert (out / "checkpoints" / "latest.safetensors").read_bytes() == before


def test_a_corrupt_checkpoint_says_what_to_do(tiny_set: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "latest.pt").write_bytes(b"PK\x03\x04 cut off")
    code = cli.main(["train", "configs/repsr.yaml", *overrides(tiny_set, out, "train.iters=4"), "--resume"])
    assert code == 2
    _one_error_line(capsys.readouterr().err, "truncated or corrupt", "without --resume")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest.pt"]


@pytest.mark.parametrize("kind", ["garbage", "empty", "cut", "weights"])
def test_a_corrupt_empty_or_foreign_safetensors_checkpoint_says_what_to_do(
        tiny_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    """The new format fails as the old one does: one line naming the cause and the way out, the file untouched."""
    from repsr.config import ModelConfig
    from repsr.models import build_model
    from repsr.weights import save_model

    out = tmp_path / "run"
    ckpt = out / "checkpoints" / "latest.safetensors"
    ckpt.parent.mkdir(parents=True)
    args = ["train", "configs/repsr.yaml", *overrides(tiny_set, out, "train.iters=4")]
    if kind == "weights":  # a model file where the training state belongs
        save_model(build_model(ModelConfig(scale=2, blocks=2, channels=8)), ckpt)
    elif kind == "cut":
        assert cli.main(args) == 0
        ckpt.write_bytes(ckpt.read_bytes()[:-100])
    else:
        ckpt.write_bytes({"garbage": b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ", "empty": b""}[kind])
    before = ckpt.read_bytes()
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 2
    why = {"garbage": "truncated or corrupt", "empty": "checkpoint is empty", "cut": "truncated or corrupt",
           "weights": "not a repsr training checkpoint"}[kind]
    _one_error_line(capsys.readouterr().err, "latest.safetensors", why, "without --resume")
    assert ckpt.read_bytes() == before


def test_a_missing_val_set_and_a_full_output_disk_are_refused_before_the_first_iteration(
        tiny_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    out = tmp_path / "run"
    base = ["train", "configs/repsr.yaml", *overrides(tiny_set, out, "train.iters=4")]
    assert cli.main([*base, f"data.val=[{tmp_path / 'nowhere'}]"]) == 2
    _one_error_line(capsys.readouterr().err, "data.val", "nowhere")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage._replace(free=1 << 20))
    assert cli.main(base) == 2
    _one_error_line(capsys.readouterr().err, "MiB free", "checkpoints")
    assert not out.exists()  # nothing was started


def test_upscale_refuses_its_input_folder_as_output_and_warns_on_tiny_tiles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", (np.random.default_rng(0).random((10, 12, 3)) * 255).astype(np.uint8))
    assert cli.main(["upscale", str(folder), "-o", str(folder), "-m", "repsr-m4c16-x2"]) == 2
    _one_error_line(capsys.readouterr().err, "is the input folder itself")
    assert [p.name for p in folder.iterdir()] == ["a.png"]
    assert cli.main(["upscale", str(folder / "a.png"), "-o", str(tmp_path / "b.png"), "-m", "repsr-m4c16-x2",
                     "-t", "2"]) == 0
    assert "warning: --tile 2 is tiny" in capsys.readouterr().err


def test_a_zero_bench_size_is_named_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--sizes", "0x0x4"]) == 2
    _one_error_line(capsys.readouterr().err, "zero width, height or scale")


def _upscale(*argv: str) -> int:
    return cli.main(["upscale", *argv, "-m", "repsr-m4c16-x2"])


def _lines(err: str, kind: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{kind}: ")]


def test_an_animation_to_a_one_frame_format_is_refused_before_any_work(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """It kept frame 1 and exited 0; now the plan is refused, naming the extensions that keep every frame."""
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.fromarray(np.full((6, 8, 3), 60 * i, np.uint8)) for i in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=80)
    write_image(src / "still.png", np.zeros((6, 8, 3), np.uint8))
    before = (src / "anim.gif").read_bytes()
    assert _upscale(str(src / "anim.gif"), "-o", str(tmp_path / "out.jpg")) == 2
    _one_error_line(capsys.readouterr().err, "anim.gif", "3 frames", ".gif, .png (APNG) and .webp")
    assert _upscale(str(src), "-o", str(tmp_path / "out"), "--ext", "jpg") == 2  # a folder: nothing done either
    _one_error_line(capsys.readouterr().err, "anim.gif", "--ext png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"] and (src / "anim.gif").read_bytes() == before


def _png_gray_alpha_16(path: Path, gray: np.ndarray, alpha: np.ndarray) -> None:
    """A 16-bit gray + alpha PNG written by hand (colour type 4): neither Pillow nor OpenCV writes one."""
    h, w = gray.shape
    pixels = np.stack([gray, alpha], axis=2).astype(">u2")  # (h, w, 2) big-endian samples, as PNG stores them
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
                     + _png_chunk(b"IEND", b""))


def test_gray_alpha_stays_gray_alpha_or_says_why_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README: grayscale stays grayscale. Gray + alpha came out RGBA without a word."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    la = tmp_path / "la.png"
    Image.fromarray(rng.integers(0, 255, (6, 7, 2), dtype=np.uint8)).save(la)
    for ext in ("png", "tif"):
        assert _upscale(str(la), "-o", str(tmp_path / f"out.{ext}")) == 0
        with Image.open(tmp_path / f"out.{ext}") as out:
            assert out.mode == "LA" and out.size == (14, 12)
    assert not _lines(capsys.readouterr().err, "warning")
    assert _upscale(str(la), "-o", str(tmp_path / "out.webp")) == 0  # WebP has no gray: said, written RGBA
    assert any("no grayscale" in line for line in _lines(capsys.readouterr().err, "warning"))
    deep = tmp_path / "la16.png"
    _png_gray_alpha_16(deep, rng.integers(0, 65535, (5, 6)), rng.integers(0, 65535, (5, 6)))
    assert _upscale(str(deep), "-o", str(tmp_path / "out16.png")) == 0
    warnings = _lines(capsys.readouterr().err, "warning")
    assert len(warnings) == 1 and "16-bit gray + alpha" in warnings[0]
    out = cv2.imread(str(tmp_path / "out16.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (10, 12, 4)
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()  # still gray values


def test_colour_conversions_are_announced_and_gray_stays_gray(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """CMYK became RGB with no note; 32-bit float gray became RGB; 16-bit gray must stay 16-bit gray."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (6, 8, 4), dtype=np.uint8), mode="CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rng.random((6, 8), dtype=np.float32) * 255).save(tmp_path / "float.tif")
    cv2.imwrite(str(tmp_path / "gray16.png"), rng.integers(0, 65535, (6, 8), dtype=np.uint16))
    for name in ("cmyk.jpg", "float.tif", "gray16.png"):
        assert _upscale(str(tmp_path / name), "-o", str(tmp_path / "out" / name)) == 0
    notes = _lines(capsys.readouterr().err, "note")
    assert len(notes) == 2 and "cmyk.jpg" in notes[0] and "CMYK converted to RGB" in notes[0]
    assert "float.tif" in notes[1] and "32-bit float gray" in notes[1]
    assert cv2.imread(str(tmp_path / "out" / "cmyk.jpg"), cv2.IMREAD_UNCHANGED).shape == (12, 16, 3)
    assert cv2.imread(str(tmp_path / "out" / "float.tif"), cv2.IMREAD_UNCHANGED).shape == (12, 16)
    gray16 = cv2.imread(str(tmp_path / "out" / "gray16.png"), cv2.IMREAD_UNCHANGED)
    assert gray16.dtype == np.uint16 and gray16.shape == (12, 16)


def test_exif_orientation_is_applied_and_unicode_paths_work(tmp_path: Path) -> None:
    """A phone photo stored sideways (EXIF orientation 6), in a folder and file named outside ASCII."""
    import cv2
    from PIL import Image

    folder = tmp_path / "фото 写真"
    folder.mkdir()
    stored = np.zeros((8, 16, 3), np.uint8)
    stored[:, :8] = (220, 30, 30)  # left half red, right half blue as stored
    stored[:, 8:] = (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the stored left half is the top
    Image.fromarray(stored).save(folder / "ünï ✓.jpg", exif=exif, quality=95)
    assert _upscale(str(folder), "-o", str(tmp_path / "выход")) == 0
    out = cv2.cvtColor(cv2.imread(str(tmp_path / "выход" / "ünï ✓.jpg")), cv2.COLOR_BGR2RGB).astype(int)
    assert out.shape == (32, 16, 3)  # 8 wide, 16 tall as shown, x2
    assert out[2:12, :, 0].mean() > 150 > out[2:12, :, 2].mean() and out[20:30, :, 2].mean() > 150


def test_a_training_folder_with_a_corrupt_and_a_2x2_image(tiny_set: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A corrupt file is named before the first iteration; a 2x2 image (no patch fits) is skipped with a count."""
    import shutil

    folder = tmp_path / "train"
    shutil.copytree(tiny_set / "HR", folder)
    write_image(folder / "tiny.png", np.zeros((2, 2, 3), np.uint8))

    def args(output: Path) -> list[str]:
        return ["train", "configs/repsr.yaml", *overrides(folder, output, "train.iters=2")]

    assert cli.main(args(tmp_path / "run")) == 0
    assert "skipped 1 of 6 training images" in caplog.text
    capsys.readouterr()
    good = next(p for p in folder.iterdir() if p.name != "tiny.png")
    (folder / "broken.png").write_bytes(good.read_bytes()[:300])
    assert cli.main(args(tmp_path / "run2")) == 2
    _one_error_line(capsys.readouterr().err, "broken.png", "cannot read image")
    assert not (tmp_path / "run2").exists()
