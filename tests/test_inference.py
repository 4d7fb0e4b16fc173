"""Tiled inference equals untiled inference; device and fp16 guards fail loudly and early."""

from __future__ import annotations

import pytest
import torch

import repsr
from repsr.errors import ReprError
from repsr.inference import TorchUpscaler, receptive_radius, resolve_device, super_resolve, upscale_tiled


def _merged(scale: int, blocks: int = 4, channels: int = 16, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return repsr.reparameterize(repsr.create_model("repsr", scale=scale, blocks=blocks, channels=channels,
                                                   zero_init_tail=False).eval())


@pytest.mark.parametrize("tile", [5, 8, 13])
@pytest.mark.parametrize("shape", [(1, 3, 17, 23), (2, 3, 9, 30)])
def test_tiled_equals_untiled_in_float64(tile: int, shape: tuple[int, ...]) -> None:
    model = _merged(scale=3, blocks=2, channels=8).double()
    x = torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    full = super_resolve(model, x)
    tiled = upscale_tiled(model, x, tile=tile)
    assert tiled.shape == full.shape
    torch.testing.assert_close(tiled, full, rtol=0, atol=1e-12)


def test_training_graph_and_bicubic_pp_tile_exactly() -> None:
    torch.manual_seed(0)
    for model in (repsr.create_model("repsr", scale=2, blocks=1, channels=8, zero_init_tail=False).eval(),
                  repsr.create_model("bicubic_pp", scale=3, channels=8).eval()):
        model = model.double()
        x = torch.rand(1, 3, 21, 19, dtype=torch.float64)
        torch.testing.assert_close(upscale_tiled(model, x, tile=6), super_resolve(model, x), rtol=0, atol=1e-12)


def test_too_little_tile_context_shows_seams() -> None:
    """The check above can fail: without enough context the tiles differ at their borders."""
    model = _merged(scale=2, blocks=3, channels=8).double()
    x = torch.rand(1, 3, 24, 24, dtype=torch.float64)
    assert receptive_radius(model) == 5
    diff = (upscale_tiled(model, x, tile=8, tile_pad=2) - super_resolve(model, x)).abs().max()
    assert diff > 1e-6


def test_tiled_matches_untiled_on_real_image_size_float32() -> None:
    model = _merged(scale=4)
    x = torch.rand(1, 3, 67, 101, generator=torch.Generator().manual_seed(2))
    out = upscale_tiled(model, x, tile=32)
    assert out.shape == (1, 3, 268, 404)
    torch.testing.assert_close(out, super_resolve(model, x), rtol=0, atol=2e-6)


def test_cuda_and_half_are_refused_without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ReprError, match="no CUDA"):
        resolve_device("cuda")
    with pytest.raises(ReprError, match="--half"):
        TorchUpscaler(_merged(scale=2, blocks=1, channels=4), "cpu", half=True)
    assert resolve_device("auto").type == "cpu"


def test_non_finite_output_is_recomputed_with_the_fp32_copy() -> None:
    """The fp16 guard: a NaN-producing model is replaced, for that call, by its fp32 copy."""
    good = _merged(scale=2, blocks=1, channels=4)
    upscaler = TorchUpscaler(good, "cpu")
    bad = _merged(scale=2, blocks=1, channels=4)
    with torch.no_grad():
        bad.body[0].bias.fill_(float("nan"))
    upscaler.model, upscaler._fp32 = bad, good  # what half=True sets up on a GPU
    x = torch.rand(1, 3, 8, 8)
    out = upscaler(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, super_resolve(good, x))
