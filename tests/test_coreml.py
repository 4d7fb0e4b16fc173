"""The Core ML export, read back with coremltools' own spec reader (Core ML cannot run a model on Linux).

What is proved without running the package: its interface (names, float32 I/O, the size range and default),
its op types, that every weight equals the merged net's (rounded to fp16 for an fp16 package), that the
graph the converter reads (the TorchScript trace) equals the module at sizes other than the traced one, and
that writing it never leaves half a package nor replaces anything that is not one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import randomize

import repsr
from repsr import cli
from repsr.config import ModelConfig
from repsr.errors import UserError
from repsr.export import coreml
from repsr.export.coreml import DEFAULT_SIDE, MAX_SIDE, export_coreml, read_package, traced
from repsr.inference import ENGINES, load_upscaler, super_resolve
from repsr.reparam.convert import reparameterize

pytest.importorskip("coremltools")


def _params(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().float().numpy() for p in model.parameters()]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_merge_writes_a_flexible_rgb_ml_program_holding_the_merged_weights(tmp_path: Path, precision: str,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repsr-x2.mlpackage"
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(out), "--precision", precision]) == 0
    printed = capsys.readouterr().out
    assert "for Core ML" in printed and "not executed here" in printed and f"{DEFAULT_SIDE}x{DEFAULT_SIDE}" in printed
    package = read_package(out)
    assert package.inputs == {"input": ("FLOAT32", ((1, 1), (3, 3), (1, MAX_SIDE), (1, MAX_SIDE)),
                                        (1, 3, DEFAULT_SIDE, DEFAULT_SIDE))}
    assert package.outputs == {"output": "FLOAT32"}
    assert {"conv", "prelu", "pixel_shuffle", "upsample_nearest_neighbor", "add"} <= package.ops
    merged = repsr.load_model(repsr.hub.model_path("repsr-m4c16-x2"))
    assert ModelConfig.from_json(package.metadata["repsr.config"]) == merged.config
    assert package.metadata["repsr.precision"] == precision
    want = _params(merged)
    assert [w.shape for w in package.weights] == [w.shape for w in want]
    dtype = np.float16 if precision == "fp16" else np.float32
    assert all(got.dtype == dtype for got in package.weights)
    for got, w in zip(package.weights, want, strict=True):
        np.testing.assert_array_equal(got, w.astype(dtype))
    if precision == "fp16":  # the rounding really happened: some weight is not an fp16 number
        assert any(not np.array_equal(got.astype(np.float32), w) for got, w in zip(package.weights, want, strict=True))


def test_a_training_checkpoint_is_merged_before_it_becomes_a_package(tmp_path: Path) -> None:
    model = randomize(repsr.create_model("dbb", scale=3, blocks=2, channels=8), seed=5).eval()
    repsr.save_model(model, tmp_path / "train.safetensors")
    assert cli.main(["merge", str(tmp_path / "train.safetensors"), "-o", str(tmp_path / "t.mlpackage")]) == 0
    package = read_package(tmp_path / "t.mlpackage")
    assert "conv" in package.ops and "batch_norm" not in package.ops
    for got, want in zip(package.weights, _params(reparameterize(model)), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bgr", [False, True])
def test_bicubic_pp_graph_pads_with_constant_pads_and_equals_the_module_at_untraced_sizes(tmp_path: Path,
                                                                                         bgr: bool) -> None:
    """The trace (what the converter reads) at both parities of both sides, none of them the traced 35x38: its
    crops are shape arithmetic, not constants. A BGR net becomes an RGB graph."""
    torch.manual_seed(3)
    model = repsr.create_model("bicubic_pp", scale=3, channels=8, bgr=bgr).eval()
    graph = traced(model)
    for h, w in ((18, 24), (7, 5), (9, 16), (16, 9), (1, 1)):
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            got = graph(x).clamp(0, 1)
        torch.testing.assert_close(got, super_resolve(model, x), rtol=0, atol=2e-6)
    notes = export_coreml(model, tmp_path / "bpp.mlpackage")
    package = read_package(tmp_path / "bpp.mlpackage")
    assert {"pad", "slice_by_index", "conv", "leaky_relu", "pixel_shuffle"} <= package.ops
    assert ("reverse" in package.ops) == bgr and any("BGR" in note for note in notes) == bgr
    assert not ModelConfig.from_json(package.metadata["repsr.config"]).bgr  # the file is RGB either way
    for got, want in zip(package.weights, _params(model), strict=True):
        np.testing.assert_array_equal(got, want)


def test_merge_replaces_only_a_core_ml_package_and_leaves_nothing_half_written(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture[str],
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.mlpackage"
    out.write_bytes(b"a user's file")
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(out)]) == 2
    assert "exists and is a file: not overwriting it" in capsys.readouterr().err
    assert out.read_bytes() == b"a user's file"
    out.unlink()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(out)]) == 2
    assert "a folder that is not a Core ML package" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    out.rmdir()
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(out)]) == 0
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(out), "--precision", "fp16"]) == 0  # ours: replaced
    assert read_package(out).metadata["repsr.precision"] == "fp16"

    def broken(path: Path, model: torch.nn.Module, precision: str) -> None:
        raise RuntimeError("converter bug")

    monkeypatch.setattr(coreml, "check_package", broken)
    with pytest.raises(RuntimeError, match="converter bug"):
        export_coreml(repsr.load_model(repsr.hub.model_path("repsr-m4c16-x2")), out)
    assert read_package(out).metadata["repsr.precision"] == "fp16"  # the old package, whole
    with pytest.raises(RuntimeError, match="converter bug"):
        export_coreml(repsr.load_model(repsr.hub.model_path("repsr-m4c16-x2")), tmp_path / "new.mlpackage")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mlpackage"]  # no temporary folder, no half package


def test_bad_requests_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="cannot run them; the package runs in Core ML on iOS"):
        load_upscaler("repsr-m4c16-x2", "coreml")
    merged = repsr.load_model(repsr.hub.model_path("repsr-m4c16-x2"))
    with pytest.raises(UserError, match="store fp32 or fp16 weights, not int8"):
        export_coreml(merged, tmp_path / "m.mlpackage", "int8")
    torch.manual_seed(2)
    official = repsr.create_model("bicubic_pp", scale=3, channels=8, bias=False).eval()
    torch.save(official.state_dict(), tmp_path / "official.pth")  # no config: the channel order is unknown
    assert cli.main(["merge", str(tmp_path / "official.pth"), "-o", str(tmp_path / "b.mlpackage")]) == 2
    assert "pass --bgr" in capsys.readouterr().err and not (tmp_path / "b.mlpackage").exists()
    monkeypatch.setattr(type(ENGINES["coreml"]), "installed", lambda self: self.package != "coremltools")
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(tmp_path / "m.mlpackage")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'repsr[coreml]'" in err and err.count("\n") == 1
    assert not (tmp_path / "m.mlpackage").exists()
