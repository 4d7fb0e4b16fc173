"""A merged net exported as Compact .pth loads in spandrel (chaiNNer's loader) and matches.

spandrel imports torchvision at module level for two unrelated architectures (LaMa,
RestoreFormer), and PyPI's torchvision does not import beside the local CPU torch. Where
torchvision is missing we register a stand-in for exactly the three names spandrel imports; it
is never called on the Compact path this test exercises.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from helpers import randomize

import repsr
from repsr.weights import save_compact_pth


def _import_spandrel():
    if importlib.util.find_spec("spandrel") is None:
        pytest.skip("spandrel not installed (pip install --no-deps spandrel==0.4.2)")
    try:
        import torchvision  # noqa: F401
    except Exception:
        functional = types.ModuleType("torchvision.transforms.functional")

        def _unavailable(*args, **kwargs):
            raise RuntimeError("torchvision stand-in: not available in repsr's tests")

        functional.InterpolationMode = type("InterpolationMode", (), {})
        functional.rotate = functional.normalize = _unavailable
        transforms = types.ModuleType("torchvision.transforms")
        transforms.functional = functional
        tv = types.ModuleType("torchvision")
        tv.transforms = transforms
        sys.modules.update({"torchvision": tv, "torchvision.transforms": transforms,
                            "torchvision.transforms.functional": functional})
    import spandrel

    return spandrel


@pytest.mark.parametrize(
    "arch,scale,blocks,channels", [("repsr", 4, 4, 16), ("ecbsr", 2, 3, 8), ("dbb", 3, 2, 12)]
)
def test_compact_export_loads_in_spandrel_and_matches(tmp_path, arch, scale, blocks, channels):
    spandrel = _import_spandrel()
    model = randomize(repsr.create_model(arch, scale=scale, blocks=blocks, channels=channels), seed=1).eval()
    merged = repsr.reparameterize(model)
    save_compact_pth(merged, tmp_path / "net.pth")
    descriptor = spandrel.ModelLoader().load_from_file(str(tmp_path / "net.pth"))
    assert type(descriptor.model).__name__ == "SRVGGNetCompact"
    assert descriptor.scale == scale
    x = torch.rand(1, 3, 19, 23, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = descriptor.model.eval()(x)
        ours, training_graph = merged(x), model(x)
    assert (theirs - ours).abs().max().item() <= 1e-5 * ours.abs().max().item()
    assert (theirs - training_graph).abs().max().item() <= 1e-5 * training_graph.abs().max().item()
