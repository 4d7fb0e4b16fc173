"""``repsr upscale`` end to end: folders, bit depths, gray, alpha, bad files, tiles, backends, sample."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import repsr
from repsr import cli
from repsr.inference import load_upscaler
from repsr.upscale import Job, UpscaleOptions, input_megapixels, plan_jobs, upscale_image_file, upscale_jobs
from repsr.upscale import image as pipeline


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


def _upscale(*argv: str) -> int:
    return cli.main(["upscale", *argv])


def _one_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def test_two_inputs_with_one_output_name_are_refused_before_any_work(model_file: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`a.png a.jpg --ext png` once wrote one file and reported "upscaled 2 of 2"."""
    for name in ("a.png", "a.jpg"):
        _write(tmp_path / name, np.full((4, 4, 3), 9, np.uint8))
    out = tmp_path / "out"
    code = _upscale(str(tmp_path / "a.png"), str(tmp_path / "a.jpg"), "-o", str(out), "--ext", "png",
                    "--model", str(model_file))
    assert code == 2
    _one_error(capsys, "a.png", "a.jpg", "both be written")
    assert not out.exists()


def test_an_output_that_would_replace_another_input_is_refused(model_file: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.png", "a.jpg"):
        _write(tmp_path / name, np.full((4, 4, 3), 9, np.uint8))
    before = (tmp_path / "a.png").read_bytes()
    code = _upscale(str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), "-o", str(tmp_path), "--ext", "png",
                    "--model", str(model_file))
    assert code == 2
    _one_error(capsys, "overwrite the input")
    assert (tmp_path / "a.png").read_bytes() == before


def test_an_output_folder_inside_the_input_folder_is_not_upscaled_again(model_file: Path, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    _write(src / "x.png", np.full((4, 4, 3), 9, np.uint8))
    for _ in range(2):
        assert _upscale(str(src), "-o", str(src / "up"), "--model", str(model_file)) == 0
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) == ["up/x.png", "x.png"]


@pytest.mark.parametrize("source, target", [("clip.mp4", "clip.png"), ("a.png", "a.mp4")])
def test_a_video_written_as_an_image_or_the_reverse_is_refused(source: str, target: str, model_file: Path,
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / source).write_bytes(b"not decoded: refused before any work")
    assert _upscale(str(tmp_path / source), "-o", str(tmp_path / "out" / target), "--model", str(model_file)) == 2
    _one_error(capsys, "cannot be written as")
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_is_a_one_line_error(model_file: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A path under a regular file stands in for a read-only place (no root tricks needed)."""
    _write(tmp_path / "a.png", np.full((4, 4, 3), 9, np.uint8))
    (tmp_path / "blocker").write_text("a file, not a folder")
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "blocker" / "a.png"), "--model", str(model_file)) == 1
    _one_error(capsys, "cannot write")
    assert not list(tmp_path.glob(".*"))


def test_a_scale_without_a_shipped_model_says_what_it_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "a.png", np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8))
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "a5.png"), "-s", "5") == 0
    note = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "no shipped x5 model" in note[0] and "x4" in note[0] and "resized" in note[0]
    assert cv2.imread(str(tmp_path / "a5.png")).shape == (30, 40, 3)


def test_fast_runs_the_shipped_bicubic_pp_exactly_like_naming_it(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """--fast -s 3 is -m repsr-bicubicpp-x3 (same pixels); --fast alone is the x4 net; -s 5 resizes its output."""
    _write(tmp_path / "a.png", np.random.default_rng(3).integers(0, 255, (10, 14, 3), dtype=np.uint8))
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "fast.png"), "--fast", "-s", "3",
                    "--precision", "fp32") == 0
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "named.png"), "-m", "repsr-bicubicpp-x3",
                    "--precision", "fp32") == 0
    fast, named = cv2.imread(str(tmp_path / "fast.png")), cv2.imread(str(tmp_path / "named.png"))
    assert fast.shape == (30, 42, 3) and np.array_equal(fast, named)
    capsys.readouterr()
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "fast4.png"), "--fast") == 0
    assert "note:" not in capsys.readouterr().err
    assert cv2.imread(str(tmp_path / "fast4.png")).shape == (40, 56, 3)
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "fast5.png"), "--fast", "-s", "5") == 0
    assert "no shipped x5 model: repsr-bicubicpp-x4 is x4" in capsys.readouterr().err
    assert cv2.imread(str(tmp_path / "fast5.png")).shape == (50, 70, 3)
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "x.png"), "--fast", "-m", "repsr-m4c16-x2") == 2
    _one_error(capsys, "--fast")


def test_fast_at_x2_runs_the_x2_bicubic_pp_without_a_resize(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """1080p -> 4K is x2: --fast -s 2 runs repsr-bicubicpp-x2 itself (same pixels as naming it, no note)."""
    _write(tmp_path / "a.png", np.random.default_rng(4).integers(0, 255, (10, 14, 3), dtype=np.uint8))
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "fast.png"), "--fast", "-s", "2",
                    "--precision", "fp32") == 0
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "named.png"), "-m", "repsr-bicubicpp-x2",
                    "--precision", "fp32") == 0
    fast, named = cv2.imread(str(tmp_path / "fast.png")), cv2.imread(str(tmp_path / "named.png"))
    assert fast.shape == (20, 28, 3) and np.array_equal(fast, named)


def test_what_a_format_cannot_keep_is_announced(model_file: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    _write(tmp_path / "in" / "rgba.png", rng.integers(0, 255, (5, 6, 4), dtype=np.uint8))
    _write(tmp_path / "in" / "deep.png", rng.integers(0, 65535, (5, 6, 3), dtype=np.uint16))
    _write(tmp_path / "in" / "plain.png", rng.integers(0, 255, (5, 6, 3), dtype=np.uint8))
    assert _upscale(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--ext", "jpg", "--model", str(model_file)) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert any("rgba.png" in w and "alpha dropped" in w for w in warnings)
    assert any("deep.png" in w and "8-bit" in w for w in warnings)


def test_out_of_memory_suggests_a_smaller_tile_than_the_one_in_use(model_file: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 4608000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(pipeline, "upscale_to_pixels", exhausted)
    _write(tmp_path / "a.png", np.full((4, 4, 3), 9, np.uint8))
    a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    assert _upscale(a, "-o", b, "-t", "256", "--model", str(model_file)) == 1
    _one_error(capsys, "out of memory with --tile 256", "try --tile 128")
    assert _upscale(a, "-o", b, "--model", str(model_file)) == 1
    _one_error(capsys, "out of memory", "try --tile 512")


def test_a_single_tiled_image_reports_its_tiles(model_file: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "big.png", np.random.default_rng(0).integers(0, 255, (40, 36, 3), dtype=np.uint8))
    assert _upscale(str(tmp_path / "big.png"), "-o", str(tmp_path / "out.png"), "-t", "8", "--model",
                    str(model_file)) == 0
    err = capsys.readouterr().err
    assert "big.png (tiles)" in err and "25/25" in err  # 5 x 5 tiles of 8 px


def test_pipelined_folder_writes_the_same_bytes_as_one_file_at_a_time(folder: Path, model_file: Path,
                                                                      tmp_path: Path) -> None:
    """The reader/writer threads change when work happens, never the pixels or the encoded files."""
    upscaler = load_upscaler(str(model_file), "eager")
    jobs = plan_jobs([folder], tmp_path / "piped", UpscaleOptions())
    assert upscale_jobs(upscaler, jobs, UpscaleOptions(), verbose=False) == 3  # the three bad files
    written = 0
    for job in jobs:
        one = tmp_path / "single" / job.target.relative_to(tmp_path / "piped")
        try:
            upscale_image_file(upscaler, Job(job.source, one), UpscaleOptions())
        except repsr.UserError:
            assert not job.target.exists()
            continue
        assert one.read_bytes() == job.target.read_bytes()
        written += 1
    assert written == 4


def test_input_megapixels_reads_headers_and_counts_bad_files_as_nothing(folder: Path) -> None:
    jobs = plan_jobs([folder], folder.parent / "out", UpscaleOptions())
    # truncated.png keeps rgb16.png's header (13x11); text.png and corrupt.jpg have none
    assert input_megapixels(jobs) * 1e6 == pytest.approx(2 * 13 * 11 + 10 * 12 + 9 * 7 + 1)


def test_unknown_backend_is_a_usage_error(model_file: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "a.png"
    _write(src, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--model", str(model_file), "--backend", "trt"])
    assert exit_info.value.code == 2 and "Traceback" not in capsys.readouterr().err
    assert cli.main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--model", str(model_file),
                     "--backend", "eager"]) == 0


COLOURS = [(230, 40, 40), (40, 200, 60), (50, 70, 220), (220, 200, 40)]  # one per frame: order is visible


def _animation(path: Path, colours: list[tuple[int, int, int]] = COLOURS, size: tuple[int, int] = (12, 10)) -> None:
    """An animation of solid frames with a transparent 3x3 top-left corner, 100-400 ms per frame, looping twice.

    GIF frames are palette images with a transparency index (what GIF stores); APNG and WebP get RGBA.
    """
    from PIL import Image

    frames = []
    for colour in colours:
        rgba = np.zeros((size[1], size[0], 4), np.uint8)
        rgba[...] = (*colour, 255)
        rgba[:3, :3, 3] = 0
        frame = Image.fromarray(rgba)
        if path.suffix == ".gif":
            frame = Image.frombytes("P", size, np.where(rgba[:, :, 3] == 0, 1, 0).astype(np.uint8).tobytes())
            frame.putpalette([*colour, 0, 0, 0])
            frame.info["transparency"] = 1
        frames.append(frame)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[100, 200, 300, 400], loop=2)


@pytest.mark.parametrize("ext", ["gif", "png", "webp"])
def test_an_animation_keeps_every_frame_in_order_with_its_duration_loop_and_transparency(
        ext: str, tmp_path: Path) -> None:
    """Every frame upscaled (not the first one only, which exited 0 before), written in the same format."""
    from PIL import Image

    src, out = tmp_path / f"anim.{ext}", tmp_path / f"out.{ext}"
    _animation(src)
    assert _upscale(str(src), "-o", str(out), "--model", "repsr-m4c16-x2") == 0
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.size == (24, 20) and im.info["loop"] == 2
        for index, colour in enumerate(COLOURS):
            im.seek(index)
            rgba = np.asarray(im.convert("RGBA")).astype(int)
            assert im.info["duration"] == 100 * (index + 1)
            assert np.abs(rgba[10:, 10:, :3] - colour).max() <= 12  # this frame's colour, upscaled
            assert (rgba[:4, :4, 3] == 0).all() and (rgba[8:, 8:, 3] == 255).all()  # its transparent corner, x2


def test_an_animation_may_change_between_animated_formats(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "in").mkdir()
    _animation(tmp_path / "in" / "anim.gif")
    assert _upscale(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--ext", "webp", "--model",
                    "repsr-m4c16-x2") == 0
    with Image.open(tmp_path / "out" / "anim.webp") as im:
        assert im.n_frames == 4 and im.size == (24, 20)


def test_gifs_in_a_folder_are_upscaled_and_a_gif_output_name_is_a_file(tmp_path: Path) -> None:
    """`.gif` was not an image suffix: folders skipped GIFs and `-o x.gif` wrote the folder x.gif/anim.gif."""
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    _animation(src / "anim.gif")
    Image.fromarray(np.full((6, 8, 3), (200, 30, 90), np.uint8)).save(src / "still.gif")
    assert _upscale(str(src), "-o", str(tmp_path / "out"), "--model", "repsr-m4c16-x2") == 0
    with Image.open(tmp_path / "out" / "anim.gif") as anim, Image.open(tmp_path / "out" / "still.gif") as still:
        assert anim.n_frames == 4 and getattr(still, "n_frames", 1) == 1 and still.size == (16, 12)
    assert _upscale(str(src / "anim.gif"), "-o", str(tmp_path / "x.gif"), "--model", "repsr-m4c16-x2") == 0
    assert (tmp_path / "x.gif").is_file()
    with Image.open(tmp_path / "x.gif") as im:
        assert im.n_frames == 4
