"""The OpenVINO engine: fp32 equal to eager PyTorch, IR export, INT8 files, its cache and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import repsr
from repsr import cli
from repsr.errors import UserError
from repsr.export.onnx import export_onnx
from repsr.hub import shipped_models
from repsr.imageio import quantize
from repsr.inference import TorchUpscaler, load_upscaler, super_resolve, upscale_tiled
from repsr.inference.engines import openvino as ov_engine
from repsr.inference.engines.openvino import OpenVinoUpscaler

pytest.importorskip("openvino")


def _levels(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(np.abs(quantize(a.numpy(), 8).astype(int) - quantize(b.numpy(), 8).astype(int)).max())


@pytest.mark.parametrize("name", shipped_models())
def test_shipped_models_run_exactly_on_openvino_at_odd_sizes(name: str) -> None:
    eager, fast = load_upscaler(name, "eager"), load_upscaler(name, "openvino", threads=1)
    assert isinstance(fast, OpenVinoUpscaler) and fast.engine == "openvino fp32"
    assert (fast.scale, fast.receptive_radius, fast.tile_alignment, fast.bgr) == \
        (eager.scale, eager.receptive_radius, eager.tile_alignment, eager.bgr)
    for h, w in ((17, 23), (1, 1), (40, 9)):
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        want, got = eager(x), fast(x)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 2e-5 and _levels(got, want) <= 1


def test_bicubic_pp_bgr_runs_on_openvino_at_both_parities(tmp_path: Path) -> None:
    """Bicubic++'s stride-2 first conv branches on odd sides: the converted graph pads like the ONNX export."""
    torch.manual_seed(0)
    model = repsr.create_model("bicubic_pp", scale=3, channels=8, bgr=True).eval()
    repsr.save_model(model, tmp_path / "bpp.safetensors")
    fast = load_upscaler(str(tmp_path / "bpp.safetensors"), "openvino", threads=1)
    assert fast.bgr and fast.tile_alignment == 2
    for shape in [(1, 3, 18, 24), (1, 3, 7, 5), (2, 3, 9, 16)]:
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[2]))
        torch.testing.assert_close(fast(x), super_resolve(model, x), rtol=0, atol=2e-6)


def test_tiles_on_openvino_equal_the_whole_image() -> None:
    fast = load_upscaler("repsr-m4c16-x2", "openvino", threads=1)
    x = torch.rand(1, 3, 45, 38, generator=torch.Generator().manual_seed(1))
    assert _levels(upscale_tiled(fast, x, 16, None), fast(x)) <= 1  # several shapes compiled, one result


def test_a_new_shape_runs_on_the_dynamic_model_and_a_repeated_one_gets_compiled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder of unique sizes compiles nothing per image; a shape seen again is compiled statically once."""
    fast = load_upscaler("repsr-m4c16-x2", "openvino", threads=1)
    eager = load_upscaler("repsr-m4c16-x2", "eager")
    assert isinstance(fast, OpenVinoUpscaler)
    core, compiled = ov_engine._core(), []

    class CountingCore:
        def compile_model(self, model, device, properties):  # noqa: ANN001, ANN202 -- OpenVINO's own types
            compiled.append(model.is_dynamic())
            if model.is_dynamic():  # its per-shape cache is bounded, or a folder of icon sizes grows without end
                assert properties["CPU_RUNTIME_CACHE_CAPACITY"] == 16
            return core.compile_model(model, device, properties)

    monkeypatch.setattr(ov_engine, "_core", lambda: CountingCore())
    shapes = [(1, 3, 9 + i, 13 + 2 * i) for i in range(6)]
    for shape in shapes:
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[2]))
        assert _levels(fast(x), eager(x)) <= 1
    assert compiled == [True]  # six sizes, one (dynamic) compilation
    for _ in range(3):
        assert _levels(fast(x), eager(x)) <= 1
    assert compiled == [True, False]  # the last size came back: compiled for its shape, then reused


def test_merge_writes_an_ir_that_loads_with_its_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x3.xml"
    assert cli.main(["merge", "repsr-m4c16-x3", "-o", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".bin").is_file() and "for OpenVINO" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x3.bin", "x3.xml"]  # no temporary left behind
    from_ir, eager = load_upscaler(str(out)), load_upscaler("repsr-m4c16-x3", "eager")
    assert from_ir.engine == "openvino fp32" and from_ir.scale == 3  # type: ignore[attr-defined]
    assert from_ir.config == eager.config  # type: ignore[attr-defined]  # the config travels in rt_info
    x = torch.rand(1, 3, 21, 30, generator=torch.Generator().manual_seed(0))
    assert _levels(from_ir(x), eager(x)) <= 1


def test_onnx_files_fp32_and_int8_run_on_openvino(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = repsr.reparameterize(repsr.create_model("repsr", scale=2, blocks=2, channels=8,
                                                    zero_init_tail=False).eval())
    export_onnx(model, tmp_path / "m.onnx")
    fp32 = load_upscaler(str(tmp_path / "m.onnx"), "openvino", threads=1)
    x = torch.rand(1, 3, 19, 26, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(fp32(x), super_resolve(model, x), rtol=0, atol=2e-6)
    from repsr.export.quantize import QuantOptions, quantize_onnx

    quantize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx", [x.numpy()], QuantOptions())
    int8 = load_upscaler(str(tmp_path / "q.onnx"), "openvino", threads=1)
    assert int8.engine == "openvino INT8"  # type: ignore[attr-defined]
    assert (int8(x) - fp32(x)).abs().mean().item() < 0.02  # integer kernels, but the same picture
    with pytest.raises(UserError, match="INT8 file"):
        load_upscaler(str(tmp_path / "m.onnx"), "openvino", precision="int8")
    with pytest.raises(UserError, match="is an INT8 file"):
        load_upscaler(str(tmp_path / "q.onnx"), "openvino", precision="fp32")


def test_conversion_is_cached_and_a_damaged_cache_entry_is_rebuilt(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPSR_CACHE", str(tmp_path / "cache"))
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    want = load_upscaler("repsr-m4c16-x2", "openvino", threads=1)(x)
    entries = sorted((tmp_path / "cache" / "openvino").glob("*.xml"))
    assert len(entries) == 1 and entries[0].with_suffix(".bin").is_file()
    calls = []
    monkeypatch.setattr(ov_engine, "convert", lambda m: calls.append(m) or pytest.fail("converted again"))
    assert torch.equal(load_upscaler("repsr-m4c16-x2", "openvino", threads=1)(x), want)  # read from the cache
    monkeypatch.undo()
    monkeypatch.setenv("REPSR_CACHE", str(tmp_path / "cache"))
    entries[0].write_text("<net")  # truncated by a crash or a full disk
    assert torch.equal(load_upscaler("repsr-m4c16-x2", "openvino", threads=1)(x), want)


def test_bad_ir_files_and_precisions_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(tmp_path / "m.xml")]) == 0
    (tmp_path / "m.bin").unlink()
    with pytest.raises(UserError, match="m.bin are missing"):
        load_upscaler(str(tmp_path / "m.xml"))
    for text, why in (("<net><layers>", "not a readable OpenVINO IR"), ("<html/>", "root element is <html>")):
        (tmp_path / "bad.xml").write_text(text)
        (tmp_path / "bad.bin").write_bytes(b"")
        with pytest.raises(UserError, match=why):
            load_upscaler(str(tmp_path / "bad.xml"))
    monkeypatch.setattr(ov_engine, "native_precisions", lambda: frozenset({"fp32"}))  # an AVX2-only CPU
    with pytest.raises(UserError, match="no native bf16.*use --precision fp32"):
        load_upscaler("repsr-m4c16-x2", "openvino", precision="bf16")
    capsys.readouterr()
    assert cli.main(["upscale", "--sample", "-o", str(tmp_path / "s.png"), "--precision", "bf16"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --precision bf16")
    assert not (tmp_path / "s.png").exists()
    with pytest.raises(UserError, match="runs fp32, int8, not bf16"):
        load_upscaler("repsr-m4c16-x2", "onnx", precision="bf16")


def test_upscale_cli_on_openvino_keeps_alpha_and_matches_eager(tmp_path: Path, data_dir: Path) -> None:
    from PIL import Image

    rgb = Image.open(next((data_dir / "Set5" / "HR").iterdir())).convert("RGB").crop((0, 0, 61, 47))
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    rgba.save(tmp_path / "in.png")
    for backend in ("eager", "openvino"):
        assert cli.main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / f"{backend}.png"), "-s", "2",
                         "--backend", backend, "-t", "24", "--precision", "fp32"]) == 0
    eager, fast = (np.asarray(Image.open(tmp_path / f"{b}.png")).astype(int) for b in ("eager", "openvino"))
    assert fast.shape == (94, 122, 4) and np.abs(fast - eager).max() <= 1


def test_eval_scores_any_engine_with_the_same_evaluator(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    scores = {}
    for backend in ("eager", "openvino"):
        assert cli.main(["eval", "-m", "repsr-m4c16-x4", "-d", str(data_dir / "Set5"), "--backend", backend,
                         "--threads", "1", "--json", "--quiet"]) == 0
        scores[backend] = json.loads(capsys.readouterr().out)["Set5"]["psnr"]
    assert abs(scores["eager"] - scores["openvino"]) < 0.002


def test_torch_upscaler_and_openvino_declare_what_runs() -> None:
    assert TorchUpscaler(repsr.create_model("repsr", scale=2, blocks=1, channels=4)).engine == "torch cpu"


def test_precision_auto_runs_bf16_only_where_the_cpu_has_it() -> None:
    """``--precision auto`` (upscale's default): bf16 where native (measured <= 0.005 dB, docs/deploy.md), else fp32;
    the library's default (None) stays exact fp32."""
    import dataclasses

    from repsr.inference.engines import ENGINES, auto_precision

    engine = ENGINES["openvino"]
    native = "bf16" in ov_engine.native_precisions()
    assert auto_precision(engine) == ("bf16" if native else None)
    assert auto_precision(dataclasses.replace(engine, native=lambda: frozenset({"fp32"}))) is None
    assert auto_precision(ENGINES["eager"]) is None
    chosen = load_upscaler("repsr-m4c16-x2", "auto", precision="auto", threads=1)
    assert chosen.engine == ("openvino bf16" if native else "openvino fp32")  # type: ignore[attr-defined]
    assert load_upscaler("repsr-m4c16-x2", "auto", threads=1).engine == "openvino fp32"  # type: ignore[attr-defined]
