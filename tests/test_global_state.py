"""Library calls leave the caller's process as they found it (#27): torch's and OpenCV's threads, grad mode, the
default dtype, autocast and deterministic mode are held, around every public entry point, to what they were."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import repsr
import repsr.errors
from repsr.bench import run_bench
from repsr.bench_folder import run_folder_bench
from repsr.data.crops import load_val_batch
from repsr.data.imresize import imresize
from repsr.evaluate import evaluate
from repsr.export.quantize import QuantOptions, quantize_model
from repsr.global_state import capture, preserved
from repsr.imageio import write_image
from repsr.inference import load_upscaler, super_resolve
from repsr.prune import global_prune
from repsr.train.config import load_train_config
from repsr.train.cost import family_costs
from repsr.train.loop import Trainer, train

SHIPPED = "repsr-m4c16-x2"
Entry = Callable[[Path, Path], object]  # (folder of tiny HR images, a scratch folder) -> anything


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three smooth 48x48 images: a dataset, a training set and a folder to upscale, at almost no cost."""
    folder = tmp_path_factory.mktemp("state") / "Tiny"
    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(folder / f"{i}.png", cv2.GaussianBlur((rng.random((48, 48, 3)) * 255).astype(np.uint8), (5, 5), 0))
    return folder


def _tiny() -> torch.nn.Module:
    return repsr.create_model("repsr", scale=2, blocks=1, channels=4)


def _train(images: Path, tmp: Path) -> object:
    """Two iterations on two threads, deterministic: both are the run's own settings."""
    return train(load_train_config(None, [
        "model.arch=repsr", "model.blocks=1", "model.channels=4", "model.scale=2", "train.iters=2",
        "train.batch_size=2", "train.patch_size=8", "train.bn_switch=0.5", "train.bn_calib_batches=1",
        "train.val_every=0", "train.ckpt_every=0", "train.amp=false", "train.threads=2", "train.deterministic=true",
        f"data.train=[{images}]", f"output={tmp / 'run'}"]))


def _prune(images: Path, tmp: Path) -> object:
    model = repsr.create_model("bicubic_pp", scale=3, channels=4).eval()
    val = load_val_batch([str(images)], 3, "bicubic", crop=8)
    return global_prune(model, val, {"residual": 3, "mid": 3}, per_round=2, log=lambda line: None)


def _upscale(backend: str) -> Entry:
    def run(images: Path, tmp: Path) -> object:
        if backend == "openvino":
            pytest.importorskip("openvino")
        return load_upscaler(SHIPPED, backend, threads=2)(torch.rand(1, 3, 12, 16))
    return run


ENTRY_POINTS: dict[str, Entry] = {
    "create_model+reparameterize": lambda images, tmp: repsr.reparameterize(_tiny()),
    "super_resolve": lambda images, tmp: super_resolve(_tiny().eval(), torch.rand(1, 3, 8, 8)),
    "imresize": lambda images, tmp: imresize(np.zeros((12, 16, 3), np.uint8), 2),
    "evaluate": lambda images, tmp: evaluate(_tiny(), [images], 2, progress=False),
    "evaluate bicubic": lambda images, tmp: evaluate(None, [images], 2, progress=False),
    "load_upscaler eager": _upscale("eager"),
    "load_upscaler openvino": _upscale("openvino"),
    "load_upscaler onnx": _upscale("onnx"),
    "quantize_model": lambda images, tmp: quantize_model(repsr.reparameterize(_tiny()).eval(), tmp / "q.onnx",
                                                         [np.full((2, 3, 8, 8), 0.5, np.float32)], QuantOptions()),
    "run_bench": lambda images, tmp: run_bench("repsr:M1C4", "16x12x2", threads=[2], warmup=0, reps=1,
                                               with_compile=False),
    "run_folder_bench": lambda images, tmp: run_folder_bench(SHIPPED, images, 2, 1,
                                                             backends=(("eager NCHW", "eager", False),)),
    "family_costs": lambda images, tmp: family_costs(["plain"], 1, 4, 2, 2, 8, 0.5, reps=1, rounds=1, threads=2),
    "Trainer.run": _train,
    "global_prune": _prune,
}


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_a_library_call_leaves_threads_grad_mode_dtype_autocast_and_determinism_as_it_found_them(
        name: str, images: Path, tmp_path: Path) -> None:
    with preserved():  # settings none of the calls picks by itself, so a call that sets its own shows
        torch.set_num_threads(1)
        cv2.setNumThreads(3)
        torch.set_autocast_dtype("cpu", torch.float16)
        before, onnx_log = capture(), logging.getLogger("torch.onnx").level
        ENTRY_POINTS[name](images, tmp_path)
        assert capture() == before
        assert logging.getLogger("torch.onnx").level == onnx_log  # the ONNX exporter is quiet for its export only


@pytest.mark.parametrize("name", ["Trainer.run", "family_costs"])
def test_training_seeds_its_own_random_streams_and_gives_the_callers_back(name: str, images: Path,
                                                                           tmp_path: Path) -> None:
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    expected = random.random(), np.random.random(), torch.rand(1).item()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    ENTRY_POINTS[name](images, tmp_path)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected


def test_a_trainer_that_fails_to_start_leaves_the_process_as_it_found_it(images: Path, tmp_path: Path) -> None:
    config = load_train_config(None, ["model.blocks=1", "model.channels=4", "model.scale=2", "train.threads=2",
                                      "train.deterministic=true", f"train.init_weights={tmp_path / 'none.safetensors'}",
                                      f"data.train=[{images}]", f"output={tmp_path / 'run'}"])
    with preserved():
        torch.set_num_threads(1)
        before = capture()
        torch.manual_seed(7)
        expected = torch.rand(1).item()
        torch.manual_seed(7)
        with pytest.raises(repsr.errors.UserError):
            Trainer(config)  # after its threads, determinism and seed are set: the weights file is missing
        assert capture() == before and torch.rand(1).item() == expected


def test_preserved_restores_every_setting_when_the_block_raises() -> None:
    before = capture()
    with pytest.raises(RuntimeError), preserved():
        torch.set_num_threads(before.threads + 1)
        cv2.setNumThreads(before.cv2_threads + 1)
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float64)
        torch.set_autocast_enabled("cpu", True)
        torch.use_deterministic_algorithms(True, warn_only=True)
        raise RuntimeError("inside")
    assert capture() == before
