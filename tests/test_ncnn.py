"""The ncnn export and engine: the pair runs in the ncnn wheel equal to eager PyTorch, at any size, tiled or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import repsr
from repsr import cli
from repsr.errors import UserError
from repsr.export.ncnn import FP16_TAG, export_ncnn, parse_param
from repsr.hub import shipped_models
from repsr.imageio import quantize
from repsr.inference import ENGINES, load_upscaler, super_resolve, upscale_tiled
from repsr.inference.engines.ncnn import NcnnUpscaler

ncnn = pytest.importorskip("ncnn")


def _levels(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(np.abs(quantize(a.numpy(), 8).astype(int) - quantize(b.numpy(), 8).astype(int)).max())


def _image(h: int, w: int, n: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h * 100 + w))


@pytest.mark.parametrize("name", shipped_models())
def test_shipped_models_run_on_ncnn_within_one_level_at_odd_sizes(name: str) -> None:
    eager, fast = load_upscaler(name, "eager"), load_upscaler(name, "ncnn", threads=1)
    assert isinstance(fast, NcnnUpscaler) and fast.engine == "ncnn fp32"
    assert (fast.scale, fast.receptive_radius, fast.tile_alignment, fast.bgr) == \
        (eager.scale, eager.receptive_radius, eager.tile_alignment, eager.bgr)
    for h, w, n in ((17, 23, 1), (1, 1, 1), (40, 9, 2)):
        x = _image(h, w, n)
        want, got = eager(x), fast(x)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 5e-5 and _levels(got, want) <= 1


@pytest.mark.parametrize("bgr", [False, True])
def test_bicubic_pp_file_pads_odd_sizes_like_the_module_and_is_rgb(tmp_path: Path, bgr: bool) -> None:
    """Both parities of both sides, through the written pair; a BGR net's order is folded into an RGB file."""
    torch.manual_seed(0)
    model = repsr.create_model("bicubic_pp", scale=3, channels=8, bgr=bgr).eval()
    notes = export_ncnn(model, tmp_path / "bpp-x3.param")
    assert any("BGR" in note for note in notes) == bgr and any("odd sizes" in note for note in notes)
    fast = load_upscaler(str(tmp_path / "bpp-x3.param"), threads=1)
    assert (fast.scale, fast.receptive_radius, fast.tile_alignment, fast.bgr) == (3, 8, 2, False)
    for h, w in ((18, 24), (7, 5), (9, 16), (16, 9), (1, 1)):
        x = _image(h, w)
        torch.testing.assert_close(fast(x), super_resolve(model, x), rtol=0, atol=2e-6)


def test_fp16_storage_is_emulated_on_the_cpu_within_two_levels() -> None:
    """fp16 is what the Vulkan clients store (weights and every blob); it must differ from fp32, and not by much."""
    eager = load_upscaler("repsr-m4c16-x4", "eager")
    fp32, fp16 = (load_upscaler("repsr-m4c16-x4", "ncnn", threads=1, precision=p) for p in ("fp32", "fp16"))
    assert fp16.engine == "ncnn fp16 storage (emulated)"  # type: ignore[attr-defined]
    x = _image(33, 20)
    assert (fp16(x) - fp32(x)).abs().max().item() > 1e-4  # the rounding really happens
    assert (fp16(x) - eager(x)).abs().max().item() < 6e-3 and _levels(fp16(x), eager(x)) <= 2


def test_tiles_on_ncnn_equal_the_whole_image(tmp_path: Path) -> None:
    compact = load_upscaler("repsr-m4c16-x2", "ncnn", threads=1)
    x = _image(45, 38)
    assert _levels(upscale_tiled(compact, x, 16), compact(x)) <= 1
    torch.manual_seed(1)
    export_ncnn(repsr.create_model("bicubic_pp", scale=2, channels=8).eval(), tmp_path / "b-x2.param")
    strided = load_upscaler(str(tmp_path / "b-x2.param"), threads=1)
    assert _levels(upscale_tiled(strided, x, 16), strided(x)) <= 1  # tiles keep the stride-2 grid


def test_merge_writes_the_pair_with_upscayls_blob_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repsr-x3.param"
    assert cli.main(["merge", "repsr-m4c16-x3", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "and repsr-x3.bin" in printed and "for ncnn" in printed and "input 'data', output 'output'" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repsr-x3.bin", "repsr-x3.param"]  # no temporary left
    net = ncnn.Net()
    assert net.load_param(str(out)) == 0 and net.load_model(str(out.with_suffix(".bin"))) == 0
    assert list(net.input_names()) == ["data"] and list(net.output_names()) == ["output"]
    layers = parse_param(out.read_text(), str(out))
    assert {layer.kind for layer in layers} == {"Input", "Split", "Convolution", "PReLU", "PixelShuffle", "Interp",
                                                "BinaryOp"}
    from_file, eager = load_upscaler(str(out)), load_upscaler("repsr-m4c16-x3", "eager")
    assert from_file.engine == "ncnn fp32" and from_file.config == eager.config  # type: ignore[attr-defined]
    x = _image(21, 30)
    assert _levels(from_file(x), eager(x)) <= 1
    fp32_size = out.with_suffix(".bin").stat().st_size
    assert cli.main(["merge", "repsr-m4c16-x3", "-o", str(out), "--precision", "fp16"]) == 0  # replaces its pair
    data = out.with_suffix(".bin").read_bytes()
    assert int.from_bytes(data[:4], "little") == FP16_TAG and len(data) < 0.55 * fp32_size
    assert _levels(load_upscaler(str(out))(x), eager(x)) <= 2


def test_merge_never_overwrites_a_bin_that_is_not_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(tmp_path / "m.xml")]) == 0  # OpenVINO's m.bin
    ir_weights = (tmp_path / "m.bin").read_bytes()
    capsys.readouterr()
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(tmp_path / "m.param")]) == 2
    assert "m.bin exists and is not the weights of an ncnn m.param" in capsys.readouterr().err
    assert (tmp_path / "m.bin").read_bytes() == ir_weights and not (tmp_path / "m.param").exists()
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(tmp_path / "m.onnx"), "--precision", "fp16"]) == 2
    assert "onnxruntime files store fp32 weights, not fp16" in capsys.readouterr().err


def test_a_bicubic_pp_pth_needs_its_channel_order_before_becoming_an_ncnn_file(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture[str]
                                                                               ) -> None:
    torch.manual_seed(2)
    model = repsr.create_model("bicubic_pp", scale=3, channels=8, bias=False).eval()
    torch.save(model.state_dict(), tmp_path / "official.pth")  # the release's layout: no config, no channel order
    out = tmp_path / "official-x3.param"
    assert cli.main(["merge", str(tmp_path / "official.pth"), "-o", str(out)]) == 2
    assert "pass --bgr" in capsys.readouterr().err and not out.exists()
    assert cli.main(["merge", str(tmp_path / "official.pth"), "-o", str(out), "--bgr"]) == 0
    assert "trained on BGR" in capsys.readouterr().out
    bgr = repsr.load_model(tmp_path / "official.pth", bgr=True)
    x = _image(11, 14)
    torch.testing.assert_close(load_upscaler(str(out), threads=1)(x), super_resolve(bgr, x), rtol=0, atol=2e-6)


def test_bad_ncnn_files_and_a_missing_runtime_are_one_line_errors(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    export_ncnn(repsr.load_model(repsr.hub.model_path("repsr-m4c16-x2")), tmp_path / "m.param")
    weights = (tmp_path / "m.bin").read_bytes()
    for data, why in ((weights[:-8], "m.bin: truncated ncnn weights"), (weights + b"\0" * 8, "but its .param needs")):
        (tmp_path / "m.bin").write_bytes(data)
        with pytest.raises(UserError, match=why):
            load_upscaler(str(tmp_path / "m.param"))
    (tmp_path / "m.bin").unlink()
    with pytest.raises(UserError, match="m.bin are missing"):
        load_upscaler(str(tmp_path / "m.param"))
    (tmp_path / "bad.bin").write_bytes(b"")
    for text, why in (("<net/>", "not an ncnn .param file"), ("7767517\n3 3\nInput in 0 1 data\n", "declares 3"),
                      ("7767517\n1 1\nInput in 0 x data\n", "malformed"),
                      ("7767517\n1 1\nInput in 0 1 image\n", "needs the blobs 'data' and 'output'")):
        (tmp_path / "bad.param").write_text(text)
        with pytest.raises(UserError, match=why):
            load_upscaler(str(tmp_path / "bad.param"))
    with pytest.raises(UserError, match="merge it first"):
        export_ncnn(repsr.create_model("repsr", scale=2, blocks=1, channels=4), tmp_path / "train.param")
    monkeypatch.setattr(type(ENGINES["ncnn"]), "installed", lambda self: self.package != "ncnn")
    with pytest.raises(UserError, match=r"pip install 'repsr\[ncnn\]'"):
        load_upscaler("repsr-m4c16-x2", "ncnn")
