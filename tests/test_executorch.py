"""The ExecuTorch export and engine: the ``.pte`` an app ships, run by ExecuTorch's XNNPACK runtime here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import repsr
from repsr import cli
from repsr.errors import UserError
from repsr.export.executorch import MAX_SIDE, export_executorch
from repsr.imageio import quantize
from repsr.inference import ENGINES, load_upscaler, super_resolve

pytest.importorskip("executorch")


def _levels(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(np.abs(quantize(a.numpy(), 8).astype(int) - quantize(b.numpy(), 8).astype(int)).max())


def _image(h: int, w: int, n: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h * 1000 + w))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped x2 net written by `repsr merge` at both precisions (each export takes seconds)."""
    folder = tmp_path_factory.mktemp("pte")
    paths = {p: folder / f"x2-{p}.pte" for p in ("fp32", "fp16")}
    for precision, path in paths.items():
        assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(path), "--precision", precision]) == 0
    return paths


def test_the_pte_runs_within_one_level_of_eager_at_odd_sizes_and_beyond_its_bound(files: dict[str, Path]) -> None:
    """600 rows exceed the file's bound (512): the runner tiles, and tiles with the receptive radius as context
    leave the result equal to the untiled image."""
    eager, fast = load_upscaler("repsr-m4c16-x2", "eager"), load_upscaler(str(files["fp32"]), threads=1)
    assert fast.engine == "ExecuTorch XNNPACK fp32" and fast.max_side == MAX_SIDE
    assert (fast.scale, fast.receptive_radius, fast.tile_alignment, fast.bgr) == \
        (eager.scale, eager.receptive_radius, eager.tile_alignment, eager.bgr)
    for h, w, n in ((17, 23, 1), (1, 1, 1), (9, 40, 2), (MAX_SIDE + 88, 37, 1)):
        x = _image(h, w, n)
        want, got = eager(x), fast(x)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 5e-5 and _levels(got, want) <= 1


def test_fp16_file_computes_in_fp16_within_three_levels(files: dict[str, Path]) -> None:
    x = _image(33, 21)
    eager = load_upscaler("repsr-m4c16-x2", "eager")(x)
    fp32, fp16 = (load_upscaler(str(files[p]), threads=1) for p in ("fp32", "fp16"))
    assert fp16.engine == "ExecuTorch XNNPACK fp16"
    half = fp16(x)
    assert (half - fp32(x)).abs().max().item() > 1e-4  # the fp16 arithmetic really happens
    assert _levels(half, eager) <= 3
    with pytest.raises(UserError, match="is an fp16 ExecuTorch file: drop --precision fp32"):
        load_upscaler(str(files["fp16"]), precision="fp32")


@pytest.mark.parametrize("bgr", [False, True])
def test_bicubic_pp_file_takes_even_sides_and_the_runner_pads_odd_ones_like_the_module(tmp_path: Path,
                                                                                      bgr: bool) -> None:
    torch.manual_seed(0)
    model = repsr.create_model("bicubic_pp", scale=3, channels=8, bgr=bgr).eval()
    notes = export_executorch(model, tmp_path / "bpp.pte")
    assert any("BGR" in note for note in notes) == bgr and any("even" in note for note in notes)
    fast = load_upscaler(str(tmp_path / "bpp.pte"), threads=1)
    assert (fast.scale, fast.receptive_radius, fast.tile_alignment, fast.bgr) == (3, 8, 2, False)
    for h, w in ((18, 24), (7, 5), (9, 16), (16, 9), (1, 1)):
        x = _image(h, w)
        torch.testing.assert_close(fast(x), super_resolve(model, x), rtol=0, atol=5e-6)


def test_weights_run_through_the_engine_and_bench_has_its_rows() -> None:
    model = repsr.load_model(repsr.hub.model_path("repsr-m4c16-x3"))
    x = _image(20, 13)
    runner = load_upscaler("repsr-m4c16-x3", "executorch", threads=1)
    assert _levels(runner(x), super_resolve(model, x)) <= 1
    rows = ENGINES["executorch"].bench(model, x, 1)
    assert rows[0].name == "ExecuTorch XNNPACK fp32"
    assert all(tuple(row.fn()[0].shape) == (1, 3, 60, 39) for row in rows)


def test_bad_files_and_a_missing_runtime_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "junk.pte").write_bytes(b"not a program")
    with pytest.raises(UserError, match="junk.pte: ExecuTorch cannot load it"):
        load_upscaler(str(tmp_path / "junk.pte"))
    with pytest.raises(UserError, match="merge it first"):
        export_executorch(repsr.create_model("repsr", scale=2, blocks=1, channels=4), tmp_path / "train.pte")
    with pytest.raises(UserError, match="store fp32 or fp16 weights, not bf16"):
        export_executorch(repsr.load_model(repsr.hub.model_path("repsr-m4c16-x2")), tmp_path / "m.pte", "bf16")
    monkeypatch.setattr(type(ENGINES["executorch"]), "installed", lambda self: self.package != "executorch")
    assert cli.main(["merge", "repsr-m4c16-x2", "-o", str(tmp_path / "m.pte")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'repsr[executorch]'" in err and err.count("\n") == 1
    with pytest.raises(UserError, match=r"pip install 'repsr\[executorch\]'"):
        load_upscaler("repsr-m4c16-x2", "executorch")
