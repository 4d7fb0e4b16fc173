"""What a run leaves on disk: its folder, its model files and the length of its metrics log.

``output/checkpoints/latest.safetensors``: the full training state (see :mod:`repsr.train.checkpoint`;
runs of earlier versions wrote ``latest.pt``).
``output/model_latest.safetensors`` / ``model_best.safetensors``: the training graph (BN state
included, so it loads with :func:`repsr.load_model` and merges later); ``model_merged.safetensors``
(and ``model_best_merged.safetensors``): the deployable plain network at the end of the run.
``output/metrics.jsonl``: one JSON line per validation and per BN switch. A checkpoint stores the
log's length, and a resumed run cuts the log back to it: the iterations after the checkpoint are
run again and would otherwise be logged twice (a second ``bn_switch`` record, for one).
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from repsr.atomic import atomic_write, remove_stale_temps, why_unwritable
from repsr.errors import OutputError
from repsr.reparam.convert import reparameterize
from repsr.train.checkpoint import CHECKPOINT, LEGACY_CHECKPOINT
from repsr.weights import load_model, save_model

METRICS = "metrics.jsonl"
# Every file a run writes atomically: what a SIGKILL mid-write can leave a temporary file of.
# (latest.pt: what earlier versions wrote; a run of theirs killed mid-write, resumed now, left its temporary file)
RUN_FILES = ("config.yaml", CHECKPOINT, LEGACY_CHECKPOINT, "model_latest.safetensors", "model_best.safetensors",
             "model_merged.safetensors", "model_best_merged.safetensors")


def prepare_output(output: Path, config_yaml: str) -> None:
    """Create the run's folder and write ``config.yaml``; remove temporary files a killed run left.

    Called before anything else writes there (TensorBoard included), so an output that cannot
    be created (read-only place, a path under a regular file) is one clear error.
    """
    try:
        (output / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{output}: cannot create the output folder ({why_unwritable(exc)})") from None
    for name in RUN_FILES:
        remove_stale_temps(output / name)
    atomic_write(output / "config.yaml", lambda tmp: Path(tmp).write_text(config_yaml))


def metrics_size(output: Path) -> int:
    """Bytes in ``metrics.jsonl`` now: what a checkpoint remembers, to cut the log back on resume."""
    path = output / METRICS
    return path.stat().st_size if path.is_file() else 0


def truncate_metrics(output: Path, size: int | None) -> None:
    """Cut ``metrics.jsonl`` back to what it held at the checkpoint (older checkpoints: keep it)."""
    path = output / METRICS
    if size is not None and path.is_file() and path.stat().st_size > size:
        os.truncate(path, size)


def save_weights(output: Path, model: nn.Module, meta: dict[str, str], best: bool) -> None:
    """Write the training graph as ``model_best`` (after a new best validation score) or ``model_latest``."""
    save_model(model, output / ("model_best.safetensors" if best else "model_latest.safetensors"), meta)


def save_merged(output: Path, model: nn.Module, meta: dict[str, str], best_meta: dict[str, str]) -> None:
    """Write the deployable nets at the end of a run: ``model_merged`` and, if a best exists, its merge."""
    was_training = model.training
    save_model(reparameterize(model.eval()), output / "model_merged.safetensors", meta)
    model.train(was_training)
    best_path = output / "model_best.safetensors"
    if best_path.exists():
        save_model(reparameterize(load_model(best_path)), output / "model_best_merged.safetensors", best_meta)
