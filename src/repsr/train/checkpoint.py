"""Full training-state checkpoints, written atomically and read with ``weights_only=True``.

A checkpoint holds everything needed to continue a run bit for bit: model (including the BN
``frozen`` buffers), optimizer, scheduler, optional EMA, the iteration, the BN-switch state, the
best validation score, the RNG states of torch/numpy/python/CUDA, and the run config as JSON.
Only tensors and primitive containers are stored, so loading never unpickles code
(``torch.load(weights_only=True)``); RNG states are therefore converted to tensors here.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repsr.atomic import atomic_write
from repsr.errors import UserError
from repsr.train.config import TrainConfig, config_from_json
from repsr.weights import safe_torch_load

FORMAT = "repsr-train-1"


def rng_state() -> dict[str, Any]:
    """All RNG states as tensors/primitives (safe for ``weights_only`` loading)."""
    version, mt, gauss = random.getstate()
    legacy = np.random.get_state(legacy=True)
    assert isinstance(legacy, tuple)  # the global RandomState is MT19937: its legacy state is this 5-tuple
    kind, keys, pos, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]  # unannotated
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format tag and RNG states) to ``path`` via temp file + rename."""
    payload = {"format": FORMAT, "rng": rng_state(), **state}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely; a missing, corrupt or foreign file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint to resume from (run without --resume to start fresh)")
    advice = ("resume from a copy of a good checkpoint, or start afresh without --resume (the run's "
              "model_latest.safetensors can seed it through train.init_weights)")
    try:
        state = safe_torch_load(path, "checkpoint")
    except UserError as exc:
        raise UserError(f"{exc}; {advice}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a repsr training checkpoint; {advice}")
    return state


def check_resumable(config: TrainConfig, state: dict[str, Any], source: str) -> None:
    """A checkpoint of another model cannot be resumed; other config changes are allowed but noted."""
    old = config_from_json(state["config"], source)
    if old.model != config.model:
        was, now = old.model, config.model
        raise UserError(f"{source}: checkpoint is for model {was.arch} M{was.blocks}C{was.channels} x{was.scale}, "
                        f"not the configured {now.arch} M{now.blocks}C{now.channels} x{now.scale}")
    stored = json.loads(state["config"])
    changed = [k for k, v in json.loads(config.to_json()).items() if stored.get(k) != v]
    if changed:
        warnings.warn(f"resuming with a changed config ({', '.join(changed)})", stacklevel=3)
