"""What a run leaves on disk, and how a run is restored from it.

``output/checkpoints/latest.pt``: the full training state (see :mod:`repsr.train.checkpoint`).
``output/model_latest.safetensors`` / ``model_best.safetensors``: the training graph (BN state
included, so it loads with :func:`repsr.load_model` and merges later); ``model_merged.safetensors``
(and ``model_best_merged.safetensors``): the deployable plain network at the end of the run.
``output/metrics.jsonl``: one JSON line per validation and per BN switch. A checkpoint stores the
log's length, and a resumed run cuts the log back to it: the iterations after the checkpoint are
run again and would otherwise be logged twice (a second ``bn_switch`` record, for one).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from repsr.atomic import atomic_write, remove_stale_temps, why_unwritable
from repsr.errors import OutputError, ReprError
from repsr.reparam.convert import reparameterize
from repsr.train.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from repsr.train.config import config_from_json
from repsr.weights import save_model

if TYPE_CHECKING:
    from repsr.train.loop import Trainer


METRICS = "metrics.jsonl"
# Every file a run writes atomically: what a SIGKILL mid-write can leave a temporary file of.
RUN_FILES = ("config.yaml", "checkpoints/latest.pt", "model_latest.safetensors", "model_best.safetensors",
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


def _metrics_bytes(output: Path) -> int:
    path = output / METRICS
    return path.stat().st_size if path.is_file() else 0


def save_state(trainer: Trainer, path: Path) -> None:
    """Checkpoint everything needed to continue ``trainer`` exactly."""
    state = {
        "iteration": trainer.iteration,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "bn_switch": {"switched": trainer.switched, "at": trainer.switch_at},
        "best": dict(trainer.best),
        "config": trainer.config.to_json(),
        "metrics_bytes": _metrics_bytes(trainer.output),
    }
    save_checkpoint(path, state)


def _check_compatible(trainer: Trainer, state: dict, path: Path) -> None:
    """A checkpoint of another model cannot be resumed; other config changes are allowed but noted."""
    old = config_from_json(state["config"], str(path))
    if old.model != trainer.config.model:
        raise ReprError(f"{path}: checkpoint is for model {old.model.arch} M{old.model.blocks}C{old.model.channels} "
                        f"x{old.model.scale}, not the configured {trainer.config.model.arch} "
                        f"M{trainer.config.model.blocks}C{trainer.config.model.channels} x{trainer.config.model.scale}")
    changed = [k for k, v in json.loads(trainer.config.to_json()).items() if json.loads(state["config"]).get(k) != v]
    if changed:
        warnings.warn(f"resuming with a changed config ({', '.join(changed)})", stacklevel=2)


def load_state(trainer: Trainer, path: Path) -> None:
    """Restore ``trainer`` from a checkpoint written by :func:`save_state`."""
    state = load_checkpoint(path)
    _check_compatible(trainer, state, path)
    if (trainer.ema is None) != (state["ema"] is None):
        raise ReprError(f"{path}: train.ema differs from the checkpoint's (on/off cannot change on resume)")
    try:
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ReprError(f"{path}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    if trainer.ema is not None:
        trainer.ema.load_state_dict(state["ema"])
    trainer.iteration = int(state["iteration"])
    trainer.switched = bool(state["bn_switch"]["switched"])
    trainer.best = dict(state["best"])
    set_rng_state(state["rng"])
    if trainer.info.is_main:
        _truncate_metrics(trainer.output, state.get("metrics_bytes"))
        print(f"resuming from iteration {trainer.iteration} ({path})", file=sys.stderr, flush=True)


def _truncate_metrics(output: Path, size: int | None) -> None:
    """Cut ``metrics.jsonl`` back to what it held at the checkpoint (older checkpoints: keep it)."""
    path = output / METRICS
    if size is not None and path.is_file() and path.stat().st_size > size:
        os.truncate(path, size)


def save_outputs(trainer: Trainer, best: bool, merged: bool = False) -> None:
    """Write the model files of the run (rank 0 only); ``best`` after a new best validation score."""
    out = trainer.output
    model = trainer.eval_model()
    meta = {"iteration": str(trainer.iteration), "bn_frozen": str(trainer.switched)}
    if best:
        save_model(model, out / "model_best.safetensors", meta)
        return
    save_model(model, out / "model_latest.safetensors", meta)
    if merged:
        was_training = model.training
        save_model(reparameterize(model.eval()), out / "model_merged.safetensors", meta)
        model.train(was_training)
        best_path = out / "model_best.safetensors"
        if best_path.exists():
            from repsr.weights import load_model

            save_model(reparameterize(load_model(best_path)), out / "model_best_merged.safetensors",
                       {"iteration": str(trainer.best["iter"])})
