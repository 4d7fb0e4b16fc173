"""Video round trip through PyAV: every frame upscaled, same frame rate, audio stream kept."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import repsr
from repsr import cli
from repsr.inference import CompiledUpscaler, TorchUpscaler
from repsr.upscale import UpscaleOptions
from repsr.upscale.video import _upscale_frames


def _make_clip(path: Path, frames: int = 16, size: tuple[int, int] = (32, 24)) -> None:
    """A tiny H.264 clip with a moving square and a 440 Hz AAC tone (made here, nothing shipped)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(12))
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[4:12, i:i + 8] = (255, 128, 0)
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(video.encode(None))
        t = np.arange(int(16000 * frames / 12)) / 16000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


def test_video_round_trip_keeps_frames_rate_and_audio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", ("upscale",))
    torch.manual_seed(0)
    model = tmp_path / "x2.safetensors"
    repsr.save_model(repsr.reparameterize(repsr.create_model("repsr", scale=2, blocks=1, channels=8,
                                                             zero_init_tail=False).eval()), model)
    clip = tmp_path / "clip.mp4"
    _make_clip(clip)
    target = tmp_path / "out" / "clip_x2.mp4"
    argv = ["upscale", str(clip), "-o", str(target), "--model", str(model), "--batch", "5"]
    assert cli.main(argv) == 0
    assert not list(target.parent.glob(".*"))  # no temporary files left behind
    with av.open(str(target)) as result:
        stream = result.streams.video[0]
        frames = list(result.decode(stream))
        assert len(frames) == 16
        assert (frames[0].width, frames[0].height) == (64, 48)
        assert stream.average_rate == 12
        assert len(result.streams.audio) == 1 and result.streams.audio[0].codec_context.name == "aac"
    moved = frames[8].to_ndarray(format="rgb24")[8:24, 16 + 8:16 + 16, 0].mean()
    assert moved > 150  # the square is where it was drawn, upscaled: frames stay in order


def _tiny_x2_model(folder: Path) -> Path:
    """A merged M1C4 x2 net with a non-trivial default init, saved where the test can name it."""
    path = folder / "x2.safetensors"
    repsr.save_model(repsr.reparameterize(repsr.create_model("repsr", scale=2, blocks=1, channels=4,
                                                             zero_init_tail=False).eval()), path)
    return path


def test_a_corrupt_video_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "COMMANDS", ("upscale",))
    model = _tiny_x2_model(tmp_path)
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"\x1aE\xdf\xa3" + bytes(200))
    assert cli.main(["upscale", str(bad), "-o", str(tmp_path / "o"), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "bad.mkv" in err and "Traceback" not in err


def test_an_unwritable_video_output_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A path under a regular file stands in for a read-only place (two chained tracebacks before)."""
    monkeypatch.setattr(cli, "COMMANDS", ("upscale",))
    model = _tiny_x2_model(tmp_path)
    clip = tmp_path / "clip.mp4"
    _make_clip(clip, frames=2)
    (tmp_path / "blocker").write_text("a file, not a folder")
    for target in (tmp_path / "blocker" / "clip.mp4", tmp_path / "blocker" / "sub" / "clip.mp4"):
        assert cli.main(["upscale", str(clip), "-o", str(target), "--model", str(model)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("error:") == 1 and "cannot write" in err


def test_a_compiled_engine_gets_only_full_batches_and_the_padding_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short last batch is padded (no second compile for a new batch size); its extra outputs never leave."""
    monkeypatch.setattr(torch, "compile", lambda module, **_: module)  # the engine's logic, without compiling
    torch.manual_seed(0)
    model = repsr.reparameterize(repsr.create_model("repsr", scale=2, blocks=1, channels=4,
                                                    zero_init_tail=False).eval())
    eager = TorchUpscaler(model, "cpu")
    batches: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: batches.append(args[0].shape[0]))
    rgb = np.random.default_rng(0).integers(0, 255, (3, 6, 5, 3), dtype=np.uint8)
    sizes, opts = ((10, 12), (10, 12)), UpscaleOptions(batch=4)
    padded = _upscale_frames(CompiledUpscaler(eager), rgb, sizes, opts)
    assert batches == [4] and len(padded) == 3
    plain = _upscale_frames(eager, rgb, sizes, opts)
    assert batches == [4, 3] and all(np.array_equal(a, b) for a, b in zip(padded, plain, strict=True))


def test_frames_per_call_follow_the_frame_size_unless_the_user_chose() -> None:
    """Four 640x360 frames per call held ~1 GB of activations: large frames go one at a time by default."""
    from repsr.upscale.video import frames_per_call

    assert frames_per_call(640, 360, None) == 1
    assert frames_per_call(3840, 2160, None) == 1
    assert frames_per_call(320, 180, None) == 4
    assert frames_per_call(32, 24, None) == 8
    assert frames_per_call(640, 360, 4) == 4
