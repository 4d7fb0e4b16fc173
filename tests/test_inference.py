"""Tiled inference equals untiled inference; device and fp16 guards fail loudly and early."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import repsr
from repsr.errors import UserError
from repsr.imageio import LoadedImage, from_array, read_image
from repsr.inference import (
    TorchUpscaler,
    plan_tiles,
    resolve_device,
    super_resolve,
    upscale_tiled,
    upscale_to_pixels,
)


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
    assert model.receptive_radius == 5
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
    with pytest.raises(UserError, match="no CUDA"):
        resolve_device("cuda")
    with pytest.raises(UserError, match="--half"):
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


def _image(h: int, w: int, channels: int = 3, seed: int = 3) -> LoadedImage:
    return from_array(np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8))


@pytest.mark.parametrize("tile, pad, align", [(7, 3, 1), (8, 0, 1), (5, 4, 2), (64, 6, 1)])
def test_tiles_cover_every_pixel_exactly_once_with_their_context(tile: int, pad: int, align: int) -> None:
    h, w = 23, 17
    count = np.zeros((h, w), int)
    padded = -(-pad // align) * align  # context rounded up to the alignment, cut at the image border
    for t in plan_tiles(h, w, tile, pad, align):
        count[t.rows, t.cols] += 1
        assert t.context_rows == slice(max(t.rows.start - padded, 0), min(t.rows.stop + padded, h))
        assert t.context_cols == slice(max(t.cols.start - padded, 0), min(t.cols.stop + padded, w))
        assert t.rows.start % align == 0 and t.cols.start % align == 0
    assert (count == 1).all()


def test_tiled_pixels_never_run_the_network_on_more_than_one_padded_tile() -> None:
    """The memory bound: the network only ever sees tile + 2 * pad pixels per side, whatever the image."""
    model = _merged(scale=2, blocks=1, channels=4)
    seen: list[tuple[int, ...]] = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return super_resolve(model, x)

    spy.scale, spy.receptive_radius, spy.tile_alignment, spy.bgr = 2, 3, 1, False  # type: ignore[attr-defined]
    image = _image(50, 41)
    out = np.zeros((100, 82, 3), np.uint8)
    upscale_to_pixels(spy, image, out, tile=16)
    assert len(seen) == 4 * 3 and max(max(s[2:]) for s in seen) <= 16 + 2 * 3
    assert out.any()


def test_tiled_uint8_output_differs_from_untiled_by_at_most_one_level_rarely(data_dir) -> None:
    """The stated bound (README): float rounding of differently blocked convolution sums can move a
    value sitting on a rounding boundary by one level, never more, and only a few per million."""
    model = _merged(scale=4)
    image = read_image(data_dir / "Set14" / "LR_bicubic" / "X4" / "baboonx4.png")
    w, h = image.size
    outs = {}
    for tile in (0, 16, 40):
        outs[tile] = np.zeros((4 * h, 4 * w, 3), np.uint8)
        upscale_to_pixels(model, image, outs[tile], tile=tile)
    for tile in (16, 40):
        diff = np.abs(outs[tile].astype(int) - outs[0])
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 1e-4 * diff.size


def test_gray_output_is_the_mean_of_the_network_colour_and_fills_a_channel_view() -> None:
    model = _merged(scale=2, blocks=1, channels=4)
    image = _image(9, 7, channels=4)
    out = np.full((18, 14, 4), 7, np.uint8)
    upscale_to_pixels(model, image, out[:, :, :3], tile=4)
    full = super_resolve(model, torch.from_numpy(image.colour()).permute(2, 0, 1)[None])[0]
    expect = np.rint(full.permute(1, 2, 0).numpy() * 255)
    assert np.abs(out[:, :, :3].astype(int) - expect).max() <= 1 and (out[:, :, 3] == 7).all()
    gray = np.zeros((18, 14, 1), np.uint8)
    upscale_to_pixels(model, image, gray)
    assert np.abs(gray[:, :, 0].astype(int) - np.rint(full.mean(0).numpy() * 255)).max() <= 1


def test_every_model_family_declares_the_facts_tiling_needs() -> None:
    from repsr.models import FAMILIES

    for arch in FAMILIES:
        channels = 32 if arch == "bicubic_pp" else 8
        model = repsr.create_model(arch, scale=3, blocks=2, channels=channels) if arch != "compact" else \
            repsr.reparameterize(repsr.create_model("repsr", scale=3, blocks=2, channels=8))
        upscaler = TorchUpscaler(model)
        assert (upscaler.scale, upscaler.bgr) == (3, False), arch
        assert upscaler.receptive_radius == (8 if arch == "bicubic_pp" else 4), arch
        assert upscaler.tile_alignment == (2 if arch == "bicubic_pp" else 1), arch


def test_a_model_that_does_not_declare_its_field_is_refused_not_guessed() -> None:
    class Undeclared(torch.nn.Module):
        scale, bgr = 2, False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(UserError, match="receptive_radius"):
        upscale_tiled(Undeclared(), torch.rand(1, 3, 8, 8), tile=4)


def test_a_merged_file_is_not_merged_again_on_load_and_a_training_graph_is() -> None:
    from repsr.inference import load_upscaler, merged
    from repsr.models import CompactSR

    compact = _merged(scale=2)
    assert merged(compact) is compact
    training = repsr.create_model("repsr", scale=2, blocks=1, channels=4)
    assert isinstance(merged(training), CompactSR)
    assert isinstance(load_upscaler("repsr-m4c16-x4", "eager").model, CompactSR)  # type: ignore[attr-defined]


def test_the_cli_does_not_import_heavy_runtimes_at_startup() -> None:
    """onnx (0.7 s) and torch._dynamo (1 s) were imported by the engine registry, so every command -- an 8x8
    upscale included -- paid 1.7 s before its work; runtimes are imported where they are used."""
    import subprocess
    import sys

    code = ("import sys, repsr.cli; repsr.cli.build_parser(); import repsr.inference; "
            "print(sorted(m for m in ('onnx', 'torch._dynamo', 'openvino', 'onnxruntime', 'ncnn', 'coremltools', "
            "'executorch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
