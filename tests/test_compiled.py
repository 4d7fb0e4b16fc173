"""torch.compile as a backend: when ``auto`` picks it, equal outputs to eager, and an eager fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import repsr
from repsr.errors import UserError
from repsr.imageio import quantize
from repsr.inference import AUTO_COMPILE_MPIX, ENGINES, CompiledUpscaler, TorchUpscaler, choose_engine
from repsr.inference.engines import torch_compile as compiled_module


def _eager() -> TorchUpscaler:
    torch.manual_seed(0)
    model = repsr.create_model("repsr", scale=2, blocks=1, channels=4, zero_init_tail=False).eval()
    return TorchUpscaler(repsr.reparameterize(model), "cpu")


def _choose(backend: str | None, path: str = "m.safetensors", mpix: float = 0.0, **kw: object) -> str:
    return choose_engine(backend, path, workload_mpix=mpix, **kw).name  # type: ignore[arg-type]


def test_auto_prefers_openvino_and_without_it_compiles_only_runs_large_enough(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: OpenVINO fp32 when installed (fastest exact, docs/deploy.md); else compile for >= 7 MP, else eager."""
    assert _choose(None) == "openvino" and _choose("auto", mpix=100.0) == "openvino"
    assert _choose("auto", "m.onnx") == "openvino" and _choose("auto", "m.xml") == "openvino"
    assert _choose("auto", precision="fp16", mpix=100.0) == "eager"  # fp16 keeps its inf/NaN fallback
    monkeypatch.setattr(type(ENGINES["openvino"]), "installed", lambda self: self.package != "openvino")
    assert _choose(None, mpix=0.5) == "eager"  # one small image
    assert _choose("auto", mpix=AUTO_COMPILE_MPIX) == "compile"  # a folder, a video, a huge image
    assert _choose("auto", "m.onnx", 100.0) == "onnx"
    with pytest.raises(UserError, match="needs OpenVINO.*pip install openvino"):
        _choose("auto", "m.xml")
    with pytest.raises(UserError, match="pip install"):
        ENGINES["openvino"].require()


def test_explicit_backends_and_aliases_are_kept() -> None:
    assert _choose("compile", mpix=0.0) == "compile" and _choose("eager", mpix=100.0) == "eager"
    assert _choose("torch") == "eager" and _choose("onnxruntime") == "onnx" and _choose("ov") == "openvino"
    with pytest.raises(UserError, match="unknown backend"):
        _choose("tensorrt")
    with pytest.raises(UserError, match="unknown precision"):
        _choose("auto", precision="int4")


def test_compiled_matches_eager_within_one_level_at_two_sizes() -> None:
    """Inductor may sum in another order: float within 1e-5, uint8 within one level (two sizes: a recompile)."""
    eager = _eager()
    fast = CompiledUpscaler(eager)
    for h, w in ((12, 10), (9, 14)):
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        want, got = eager(x), fast(x)
        assert fast.active and got.shape == (1, 3, 2 * h, 2 * w)
        assert (got - want).abs().max().item() < 1e-5
        levels = np.abs(quantize(got.numpy(), 8).astype(int) - quantize(want.numpy(), 8).astype(int))
        assert levels.max() <= 1


def test_a_failed_compile_falls_back_to_eager_with_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    eager = _eager()
    fast = CompiledUpscaler(eager)
    real = compiled_module.super_resolve

    def failing(model: torch.nn.Module, lr: torch.Tensor) -> torch.Tensor:
        if model is not eager.model:
            raise torch._dynamo.exc.TorchDynamoException("no C++ compiler")
        return real(model, lr)

    monkeypatch.setattr(compiled_module, "super_resolve", failing)
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(fast(x), eager(x)) and torch.equal(fast(x), eager(x))
    assert not fast.active
    assert capsys.readouterr().err.count("warning: torch.compile failed") == 1


def test_channels_last_engine_matches_nchw_within_one_level() -> None:
    """The default eager engine keeps its weights channels_last: the same pixels as the NCHW model."""
    nchw = _eager()
    fast = TorchUpscaler(_eager().model, "cpu", channels_last=True)
    x = torch.from_numpy(np.random.default_rng(0).random((11, 13, 3), np.float32)).permute(2, 0, 1)[None]
    want, got = nchw(x), fast(x)
    assert (got - want).abs().max().item() < 1e-5
    assert np.abs(quantize(got.numpy(), 8).astype(int) - quantize(want.numpy(), 8).astype(int)).max() <= 1
