"""`repsr merge` end to end: every output format rebuilds a network equal to the training graph."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import randomize

import repsr
from repsr.cli import main
from repsr.weights import load_state


@pytest.fixture
def trained(tmp_path):
    model = randomize(repsr.create_model("dbb", scale=3, blocks=2, channels=8), seed=5).eval()
    path = tmp_path / "train.safetensors"
    repsr.save_model(model, path)
    return model, path


def _x():
    return torch.rand(1, 3, 11, 9, generator=torch.Generator().manual_seed(1))


def test_merge_to_safetensors_and_compact_pth(tmp_path, trained, capsys):
    model, path = trained
    assert main(["merge", str(path), "-o", str(tmp_path / "m.safetensors"), "--check"]) == 0
    assert main(["merge", str(path), "-o", str(tmp_path / "m.pth"), "--format", "compact"]) == 0
    out = capsys.readouterr().out
    assert "check: max |merged - original|" in out and "compact x3" in out
    with torch.no_grad():
        ref = model(_x())
        for name in ("m.safetensors", "m.pth"):
            merged = repsr.load_model(tmp_path / name)
            assert merged.config.arch == "compact"
            assert (merged(_x()) - ref).abs().max() < 1e-5 * ref.abs().max()
    _, state, _ = load_state(tmp_path / "m.pth")
    assert "body.0.weight" in state and not any("bn" in k for k in state)


def test_merge_to_onnx_matches_pytorch(tmp_path, trained):
    ort = pytest.importorskip("onnxruntime")
    model, path = trained
    assert main(["merge", str(path), "-o", str(tmp_path / "m.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for size in ((11, 9), (4, 7)):
        x = torch.rand(1, 3, *size)
        (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            ref = model(x)
        assert out.shape == tuple(ref.shape)
        assert abs(out - ref.numpy()).max() < 1e-5 * ref.abs().max().item()


@pytest.mark.parametrize("args,message", [
    (["-o", "{tmp}/m.pth"], "needs --format compact"),
    (["-o", "{tmp}/m.bin"], "must end in"),
])
def test_merge_rejects_bad_outputs(tmp_path, trained, capsys, args, message):
    _, path = trained
    assert main(["merge", str(path), *[a.format(tmp=tmp_path) for a in args]]) == 2
    assert message in capsys.readouterr().err


def test_merge_cli_bad_input_is_one_line_error(tmp_path):
    (tmp_path / "junk.safetensors").write_text("nope")
    result = subprocess.run([sys.executable, "-m", "repsr", "merge", str(tmp_path / "junk.safetensors"), "-o",
                             str(tmp_path / "o.safetensors")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_merge_into_an_unwritable_place_is_one_line_error(tmp_path, trained, capsys):
    """A path under a regular file stands in for a read-only folder (mkstemp used to raise)."""
    _, path = trained
    (tmp_path / "blocker").write_text("a file")
    for name in ("m.safetensors", "m.onnx"):
        assert main(["merge", str(path), "-o", str(tmp_path / "blocker" / name)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and "cannot write" in err[0]
