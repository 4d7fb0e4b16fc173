"""Scoring a model (or MATLAB bicubic) on benchmark datasets, the way SR papers do.

``evaluate(model, ["Set5", "Set14"], scale=4)`` returns one :class:`DatasetResult` per dataset with
per-image PSNR/SSIM and their means. Used by ``repsr eval``, training validation and the study
runner, so the convention (uint8 SR, ``crop_border = scale``, float Y or RGB, gray images on their
gray values; see :mod:`repsr.metrics`) lives in one place. An unreadable image is recorded in
``skipped`` and scoring goes on: the caller decides whether that is fatal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repsr.data.datasets import EvalDataset, Sample, find_dataset
from repsr.data.imresize import imresize
from repsr.errors import ImageError, ReprError
from repsr.imageio import write_image
from repsr.inference import Upscaler, as_upscaler
from repsr.metrics import psnr, ssim


@dataclass(frozen=True)
class ImageResult:
    name: str
    psnr: float
    ssim: float


@dataclass
class DatasetResult:
    """Per-image scores of one dataset; ``skipped`` holds ``(image name, reason)`` for failures."""

    name: str
    scale: int
    images: list[ImageResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def psnr(self) -> float:
        return float(np.mean([r.psnr for r in self.images])) if self.images else math.nan

    @property
    def ssim(self) -> float:
        return float(np.mean([r.ssim for r in self.images])) if self.images else math.nan

    def summary(self) -> dict[str, float | int]:
        """``{"psnr", "ssim", "images"}``, the per-dataset record of ``repsr eval --json``."""
        return {"psnr": self.psnr, "ssim": self.ssim, "images": len(self.images)}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def upscale(model: nn.Module | Upscaler | None, lr: np.ndarray, scale: int) -> np.ndarray:
    """SR of a uint8 LR image, uint8 with the LR's channels: MATLAB bicubic when ``model`` is None.

    ``model`` is a module or a bound upscaler (e.g. an ONNX file run by onnxruntime, fp32 or INT8).
    A gray LR enters the network as three equal channels; the output's channel mean is its gray.
    """
    if model is None:
        return imresize(lr, scale)
    rgb = np.repeat(lr[:, :, None], 3, axis=2) if lr.ndim == 2 else lr
    x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    run = as_upscaler(model)[0]
    y = run(x)[0].permute(1, 2, 0).float().cpu().numpy()
    return _to_uint8(y.mean(axis=2)) if lr.ndim == 2 else _to_uint8(y)


def score(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True) -> tuple[float, float]:
    """``(psnr, ssim)`` of uint8 images under the field's convention."""
    return psnr(sr, hr, crop_border, y_channel), ssim(sr, hr, crop_border, y_channel)


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator:
    """A rich progress bar on stderr (a no-op callable when disabled)."""
    if not enabled:
        yield lambda description: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("eval", total=total)
        yield lambda description: bar.update(task, advance=1, description=description)


def _unique_names(datasets: list[EvalDataset]) -> list[str]:
    names: list[str] = []
    for ds in datasets:
        name, k = ds.name, 2
        while name in names:
            name, k = f"{ds.name}-{k}", k + 1
        names.append(name)
    return names


def evaluate_dataset(model: nn.Module | Upscaler | None, dataset: EvalDataset, *, name: str | None = None,
                     save_dir: Path | None = None, y_channel: bool = True, tick=None) -> DatasetResult:
    """Score every pair of ``dataset``; unreadable images go to ``skipped``."""
    result = DatasetResult(name or dataset.name, dataset.scale)
    for pair in dataset.pairs:
        try:
            sample: Sample = dataset.load(pair)
            sr = upscale(model, sample.lr, dataset.scale)
            if sr.shape != sample.hr.shape:
                raise ImageError(f"SR output {sr.shape} does not match HR {sample.hr.shape}")
            if save_dir is not None:
                write_image(Path(save_dir) / result.name / f"{pair.name}.png", sr)
            result.images.append(ImageResult(pair.name, *score(sr, sample.hr, dataset.scale, y_channel)))
        except ImageError as exc:
            result.skipped.append((pair.name, str(exc)))
        if tick is not None:
            tick(f"{result.name}/{pair.name}")
    return result


def evaluate(model: nn.Module | Upscaler | None, datasets: Iterable[str | Path | EvalDataset], scale: int, *,
             save_dir: str | Path | None = None, progress: bool = True,
             y_channel: bool = True) -> dict[str, DatasetResult]:
    """Score ``model`` (None: MATLAB bicubic) on each dataset; keys are the datasets' folder names.

    ``model`` is a module (put in eval mode for the run) or a bound upscaler such as
    :class:`repsr.export.onnx.OnnxUpscaler`, which says its own ``scale``.

    ``datasets`` are paths (any layout :func:`repsr.data.datasets.find_dataset` knows) or
    already-built :class:`EvalDataset` objects (e.g. cached ones reused across validations).
    ``save_dir`` receives ``<dataset>/<image>.png`` SR outputs. Raises :class:`ReprError` for a
    model whose scale is not ``scale`` or a path that is not a dataset.
    """
    model_factor = as_upscaler(model)[1] if model is not None else scale
    if model_factor != scale:
        raise ReprError(f"the model upscales x{model_factor}, not x{scale}")
    built = [d if isinstance(d, EvalDataset) else find_dataset(d, scale) for d in datasets]
    for ds in built:
        if ds.scale != scale:
            raise ReprError(f"dataset {ds.name} was built for x{ds.scale}, not x{scale}")
    names = _unique_names(built)
    out_dir = Path(save_dir) if save_dir is not None else None
    module = model if isinstance(model, nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        with _progress_bar(progress, sum(len(d) for d in built)) as tick:
            return {name: evaluate_dataset(model, ds, name=name, save_dir=out_dir, y_channel=y_channel, tick=tick)
                    for name, ds in zip(names, built, strict=True)}
    finally:
        if module is not None and was_training:
            module.train()
