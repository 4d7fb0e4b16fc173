"""torch.compile as a backend: when ``auto`` picks it, equal outputs to eager, and an eager fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import repsr
from repsr.errors import UserError
from repsr.imageio import quantize
from repsr.inference import AUTO_COMPILE_MPIX, CompiledUpscaler, TorchUpscaler, choose_backend
from repsr.inference import compiled as compiled_module


def _eager() -> TorchUpscaler:
    torch.manual_seed(0)
    model = repsr.create_model("repsr", scale=2, blocks=1, channels=4, zero_init_tail=False).eval()
    return TorchUpscaler(repsr.reparameterize(model), "cpu")


def test_auto_compiles_only_runs_large_enough_to_repay_the_compile() -> None:
    assert choose_backend(None, False, 0.5) == "eager"  # one small image
    assert choose_backend("auto", False, AUTO_COMPILE_MPIX) == "compile"  # a folder, a video, a huge image
    assert choose_backend("auto", False, 100.0, half=True) == "eager"  # fp16 keeps its inf/NaN fallback
    assert choose_backend("auto", True, 100.0) == "onnx"
    assert choose_backend("compile", False, 0.0) == "compile" and choose_backend("eager", False, 100.0) == "eager"
    assert choose_backend("torch", False, 100.0) == "eager" and choose_backend("onnxruntime", False, 0) == "onnx"
    with pytest.raises(UserError, match="unknown backend"):
        choose_backend("tensorrt", False, 0.0)


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
