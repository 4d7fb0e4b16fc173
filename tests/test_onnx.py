"""ONNX export: one self-contained file, dynamic N/H/W, equal to PyTorch under onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch

import repsr
from repsr import cli
from repsr.bench import run_bench
from repsr.errors import UserError
from repsr.evaluate import evaluate
from repsr.export.onnx import export_onnx
from repsr.inference import load_runner, super_resolve
from repsr.inference.engines.onnxruntime import OnnxUpscaler


@pytest.fixture(scope="module")
def merged_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = repsr.reparameterize(repsr.create_model("repsr", scale=4, blocks=4, channels=16,
                                                    zero_init_tail=False).eval())
    path = tmp_path_factory.mktemp("onnx") / "m4c16_x4.onnx"
    export_onnx(model, path)
    return model, path


def test_export_is_one_file_with_plain_ops_and_dynamic_axes(merged_onnx: tuple[torch.nn.Module, Path]) -> None:
    _, path = merged_onnx
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no .onnx.data beside it
    proto = onnx.load(str(path))
    assert {n.op_type for n in proto.graph.node} == {"Conv", "PRelu", "DepthToSpace", "Resize", "Add"}
    assert proto.opset_import[0].version == 18
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]


@pytest.mark.parametrize("shape", [(1, 3, 17, 23), (2, 3, 1, 1), (1, 3, 64, 33)])
def test_onnxruntime_matches_pytorch(merged_onnx: tuple[torch.nn.Module, Path], shape: tuple[int, ...]) -> None:
    model, path = merged_onnx
    runner = OnnxUpscaler(path)
    assert runner.scale == 4 and runner.config == model.config
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(runner(x), super_resolve(model, x), rtol=0, atol=2e-6)


def test_bicubic_pp_bgr_exports_with_odd_sizes(tmp_path: Path) -> None:
    """Bicubic++ branches on odd sides in Python; the exported graph must handle both parities."""
    torch.manual_seed(0)
    model = repsr.create_model("bicubic_pp", scale=3, channels=8, bgr=True).eval()
    export_onnx(model, tmp_path / "bpp.onnx")
    runner = OnnxUpscaler(tmp_path / "bpp.onnx")
    for shape in [(1, 3, 18, 24), (1, 3, 7, 5)]:
        x = torch.rand(*shape)
        torch.testing.assert_close(runner(x), super_resolve(model, x), rtol=0, atol=2e-6)


@pytest.mark.parametrize("arch", ["compact", "bicubic_pp"])
def test_pixel_shuffle_exports_as_dcr_with_reordered_conv_channels(arch: str, tmp_path: Path) -> None:
    """The writer's DCR rewrite gives exactly the outputs of PyTorch's CRD graph."""
    torch.manual_seed(0)
    model = repsr.create_model("bicubic_pp", scale=3, channels=8, bias=True).eval() if arch == "bicubic_pp" else \
        repsr.reparameterize(repsr.create_model("repsr", scale=4, blocks=2, channels=8, zero_init_tail=False).eval())
    export_onnx(model, tmp_path / "dcr.onnx")
    proto = onnx.load(str(tmp_path / "dcr.onnx"))
    shuffle = next(n for n in proto.graph.node if n.op_type == "DepthToSpace")
    assert next(a.s for a in shuffle.attribute if a.name == "mode") == b"DCR"
    conv = next(n for n in proto.graph.node if shuffle.input[0] in n.output)
    r = next(a.i for a in shuffle.attribute if a.name == "blocksize")
    for init in proto.graph.initializer:  # undo the reordering: PyTorch's CRD graph
        if init.name in conv.input[1:]:
            w = onnx.numpy_helper.to_array(init)
            order = np.arange(len(w)).reshape(len(w) // (r * r), r * r).T.reshape(-1)
            init.CopyFrom(onnx.numpy_helper.from_array(w[np.argsort(order)], init.name))
    next(a for a in shuffle.attribute if a.name == "mode").s = b"CRD"
    onnx.save(proto, str(tmp_path / "crd.onnx"))
    x = torch.rand(2, 3, 14, 10)
    dcr, crd = OnnxUpscaler(tmp_path / "dcr.onnx")(x), OnnxUpscaler(tmp_path / "crd.onnx")(x)
    assert torch.equal(dcr, crd)
    torch.testing.assert_close(dcr, super_resolve(model, x), rtol=0, atol=2e-6)


def test_a_bad_onnx_file_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(UserError, match="cannot load ONNX"):
        OnnxUpscaler(bad)


def test_eval_and_bench_accept_an_fp32_onnx_file(data_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    model = load_runner("repsr-m4c16-x4", network=True)
    export_onnx(model, tmp_path / "x4.onnx")
    assert cli.main(["eval", "-m", str(tmp_path / "x4.onnx"), "-d", str(data_dir / "Set5"), "--json", "--quiet"]) == 0
    onnx_psnr = json.loads(capsys.readouterr().out)["Set5"]["psnr"]
    assert onnx_psnr == pytest.approx(evaluate(model, [data_dir / "Set5"], 4, progress=False)["Set5"].psnr, abs=1e-3)
    assert cli.main(["eval", "-m", str(tmp_path / "x4.onnx"), "-d", str(data_dir / "Set5"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err  # without a GPU the device itself is refused first
    assert err.count("\n") == 1 and ("runs on the CPU" in err or "no CUDA device" in err)
    rows = run_bench(str(tmp_path / "x4.onnx"), "24x16x4", threads=[1], warmup=0, reps=1).rows
    by_name = {row.name: row for row in rows}  # every installed engine that reads .onnx has its row
    assert (by_name["onnxruntime fp32"].gflop or 0) > 0
