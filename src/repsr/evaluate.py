"""Scoring upscalers on benchmark datasets, the way SR papers do: the one scoring loop.

Every score in repsr comes from :func:`score_sets`: ``repsr eval`` (one model or several side by
side), training validation, the study runner and the NTIRE table. It takes *named* pixel
upscalers -- a network (PyTorch or ONNX), MATLAB bicubic, any uint8 -> uint8 function -- so each
image is decoded once and every contender sees the very same LR. The convention (uint8 SR,
``crop_border = scale``, float Y or RGB, gray images on their gray values; see
:mod:`repsr.metrics`) lives in :func:`paper_metrics`. An unreadable image is recorded in
``skipped`` and scoring goes on: the caller decides whether that is fatal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import numpy as np
import torch
from torch import nn

from repsr.data.datasets import EvalDataset, find_dataset
from repsr.data.images import Pair
from repsr.data.imresize import imresize
from repsr.errors import ImageError, UserError
from repsr.imageio import write_image
from repsr.inference import Upscaler, as_upscaler
from repsr.metrics import psnr, ssim

# A pixel upscaler: uint8 LR, (H, W) gray or (H, W, 3) RGB -> uint8 SR with the LR's channels.
PixelUpscale = Callable[[np.ndarray], np.ndarray]
# Per-image measures by name: (uint8 SR, uint8 HR) -> value.
Metrics = Mapping[str, Callable[[np.ndarray, np.ndarray], float]]

BICUBIC = "bicubic"


@dataclass(frozen=True)
class ImageResult:
    name: str
    scores: dict[str, float]

    @property
    def psnr(self) -> float:
        return self.scores["psnr"]

    @property
    def ssim(self) -> float:
        return self.scores["ssim"]


@dataclass
class DatasetResult:
    """Per-image scores of one dataset; ``skipped`` holds ``(image name, reason)`` for failures."""

    name: str
    scale: int
    images: list[ImageResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def mean(self, metric: str) -> float:
        return float(np.mean([r.scores[metric] for r in self.images])) if self.images else math.nan

    @property
    def psnr(self) -> float:
        return self.mean("psnr")

    @property
    def ssim(self) -> float:
        return self.mean("ssim")

    def summary(self) -> DatasetSummary:
        """Mean PSNR and SSIM and the number of scored images: the per-dataset record of ``repsr eval --json``."""
        return DatasetSummary(self.psnr, self.ssim, len(self.images))


@dataclass(frozen=True)
class DatasetSummary:
    """Mean scores of one model on one dataset (NaN when no image was scored)."""

    psnr: float
    ssim: float
    images: int


@dataclass(frozen=True)
class ComparedSummary(DatasetSummary):
    """A :class:`DatasetSummary` and its difference to the reference model's on the same set (this minus it)."""

    psnr_diff: float
    ssim_diff: float


@dataclass(frozen=True)
class Comparison:
    """Models scored on the same datasets, each next to the first (the reference): ``repsr eval`` with several
    models, whose ``--json`` prints :func:`dataclasses.asdict` of this."""

    scale: int
    channel: Literal["y", "rgb"]
    reference: str
    models: dict[str, dict[str, ComparedSummary]]  # model -> dataset -> scores


def compare(results: Mapping[str, Mapping[str, DatasetResult]], scale: int, y_channel: bool = True) -> Comparison:
    """:func:`evaluate_many`'s results as a :class:`Comparison` to the first model (whose diffs are 0)."""
    reference = next(iter(results))
    first = results[reference]
    models = {name: {d: ComparedSummary(r.psnr, r.ssim, len(r.images), r.psnr - first[d].psnr,
                                        r.ssim - first[d].ssim) for d, r in sets.items()}
              for name, sets in results.items()}
    return Comparison(scale, "y" if y_channel else "rgb", reference, models)


def paper_metrics(scale: int, y_channel: bool = True) -> Metrics:
    """PSNR and SSIM of uint8 images under the field's convention (``crop_border = scale``)."""
    return {"psnr": lambda sr, hr: psnr(sr, hr, scale, y_channel),
            "ssim": lambda sr, hr: ssim(sr, hr, scale, y_channel)}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def pixel_upscaler(model: nn.Module | Upscaler) -> PixelUpscale:
    """A network as a :data:`PixelUpscale`: uint8 in, float through the net, rounded uint8 out.

    A gray LR enters the network as three equal channels; the output's channel mean is its gray.
    """
    run = as_upscaler(model)

    def upscale(lr: np.ndarray) -> np.ndarray:
        rgb = np.repeat(lr[:, :, None], 3, axis=2) if lr.ndim == 2 else lr
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        y = run(x)[0].permute(1, 2, 0).float().cpu().numpy()
        return _to_uint8(y.mean(axis=2)) if lr.ndim == 2 else _to_uint8(y)

    return upscale


def matlab_bicubic(scale: int) -> PixelUpscale:
    """MATLAB ``imresize(lr, scale, 'bicubic')`` (a = -0.5), the field's bicubic baseline."""
    return lambda lr: imresize(lr, scale)


def as_pixel_upscaler(model: nn.Module | Upscaler | None, scale: int) -> PixelUpscale:
    """``model`` as a pixel upscaler; ``None`` is MATLAB bicubic at ``scale``."""
    return matlab_bicubic(scale) if model is None else pixel_upscaler(model)


def score_sets(upscalers: Mapping[str, PixelUpscale], datasets: Mapping[str, EvalDataset], metrics: Metrics, *,
               prepare: Callable[[Pair], Pair] | None = None, save_dirs: Mapping[str, Path] | None = None,
               tick: Callable[[str], None] | None = None) -> dict[str, dict[str, DatasetResult]]:
    """``{upscaler: {dataset: DatasetResult}}``: every image decoded once, every upscaler on the same LR.

    ``prepare`` turns a decoded pair into the pair to score (e.g. the NTIRE degradation of its HR);
    ``save_dirs`` gives an upscaler's output folder (``<dir>/<dataset>/<image>.png``). An image that
    cannot be read, or whose SR does not match its HR, goes to ``skipped``.
    """
    out = {u: {d: DatasetResult(d, ds.scale) for d, ds in datasets.items()} for u in upscalers}
    for set_name, dataset in datasets.items():
        for files in dataset.pairs:
            try:
                pair = dataset.load(files)
                pair = prepare(pair) if prepare is not None else pair
            except ImageError as exc:
                for results in out.values():
                    results[set_name].skipped.append((files.name, str(exc)))
            else:
                for name, upscale in upscalers.items():
                    _score_one(upscale, pair, metrics, out[name][set_name],
                               save_dirs.get(name) if save_dirs else None)
            if tick is not None:
                tick(f"{set_name}/{files.name}")
    return out


def _score_one(upscale: PixelUpscale, pair: Pair, metrics: Metrics, result: DatasetResult,
               save_dir: Path | None) -> None:
    try:
        sr = upscale(pair.lr)
        if sr.shape != pair.hr.shape:
            raise ImageError(f"SR output {sr.shape} does not match HR {pair.hr.shape}")
        if save_dir is not None:
            write_image(Path(save_dir) / result.name / f"{pair.name}.png", sr)
        result.images.append(ImageResult(pair.name, {k: f(sr, pair.hr) for k, f in metrics.items()}))
    except ImageError as exc:
        result.skipped.append((pair.name, str(exc)))


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
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


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode for the block, back in training mode after it if it was (validation)."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def build_datasets(datasets: Iterable[str | Path | EvalDataset], scale: int) -> dict[str, EvalDataset]:
    """Datasets by unique name (``Set5``, ``Set5-2`` for a second folder of that name) at ``scale``."""
    built: dict[str, EvalDataset] = {}
    for d in datasets:
        ds = d if isinstance(d, EvalDataset) else find_dataset(d, scale)
        if ds.scale != scale:
            raise UserError(f"dataset {ds.name} was built for x{ds.scale}, not x{scale}")
        name, k = ds.name, 2
        while name in built:
            name, k = f"{ds.name}-{k}", k + 1
        built[name] = ds
    return built


@overload
def model_scale(model: nn.Module | Upscaler) -> int: ...
@overload
def model_scale(model: None) -> None: ...
def model_scale(model: nn.Module | Upscaler | None) -> int | None:
    """The scale ``model`` upscales by (None for bicubic, which takes any)."""
    return None if model is None else as_upscaler(model).scale


def evaluate_many(models: Mapping[str, nn.Module | Upscaler | None], datasets: Iterable[str | Path | EvalDataset],
                  scale: int, *, save_dirs: Mapping[str, str | Path] | None = None, progress: bool = True,
                  y_channel: bool = True) -> dict[str, dict[str, DatasetResult]]:
    """``{model name: {dataset: DatasetResult}}`` for named models (``None``: MATLAB bicubic) side by side.

    Every model must upscale by ``scale`` (a :class:`UserError` names the first that does not).
    ``save_dirs`` maps a model's name to the folder that receives its ``<dataset>/<image>.png``.
    """
    for name, model in models.items():
        factor = model_scale(model)
        if factor is not None and factor != scale:
            raise UserError(f"{name} upscales x{factor}, not x{scale}")
    built = build_datasets(datasets, scale)
    upscalers = {name: as_pixel_upscaler(model, scale) for name, model in models.items()}
    folders = {name: Path(d) for name, d in (save_dirs or {}).items()}
    with ExitStack() as stack:
        for model in models.values():
            if isinstance(model, nn.Module):
                stack.enter_context(_eval_mode(model))
        tick = stack.enter_context(_progress_bar(progress, sum(len(d) for d in built.values())))
        return score_sets(upscalers, built, paper_metrics(scale, y_channel), save_dirs=folders, tick=tick)


def evaluate(model: nn.Module | Upscaler | None, datasets: Iterable[str | Path | EvalDataset], scale: int, *,
             save_dir: str | Path | None = None, progress: bool = True,
             y_channel: bool = True) -> dict[str, DatasetResult]:
    """Score one ``model`` (None: MATLAB bicubic) on each dataset; keys are the datasets' folder names.

    ``model`` is a module (put in eval mode for the run) or a bound upscaler such as
    :class:`repsr.export.onnx.OnnxUpscaler`, which says its own ``scale``. ``datasets`` are paths
    (any layout :func:`repsr.data.datasets.find_dataset` knows) or already-built
    :class:`EvalDataset` objects (e.g. cached ones reused across validations). ``save_dir``
    receives ``<dataset>/<image>.png`` SR outputs. Raises :class:`UserError` for a model whose
    scale is not ``scale`` or a path that is not a dataset.
    """
    factor = model_scale(model)
    if factor is not None and factor != scale:
        raise UserError(f"the model upscales x{factor}, not x{scale}")
    save_dirs = {"model": save_dir} if save_dir is not None else None
    return evaluate_many({"model": model}, datasets, scale, save_dirs=save_dirs, progress=progress,
                         y_channel=y_channel)["model"]
