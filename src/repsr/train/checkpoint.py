"""Full training-state checkpoints: one safetensors file, no pickle; older ``latest.pt`` files still read.

A checkpoint holds everything needed to continue a run bit for bit: model (including the BN
``frozen`` buffers), optimizer, scheduler, optional EMA, the iteration, the BN-switch state, the
best validation score, the RNG states of torch/numpy/python/CUDA, and the run config as JSON.

Format ``repsr-train-2`` (``checkpoints/latest.safetensors``): every tensor of that state under its
path (``model/body.0.weight``, ``optimizer/state/3/exp_avg``, ``rng/torch``) and the rest as one JSON
document in the metadata (:mod:`repsr.train.tensor_tree`), next to ``format``. Reading it parses a
JSON header and copies tensor bytes; no code can run. Format ``repsr-train-1`` (``latest.pt``, what
earlier versions wrote) is a ``torch.save`` pickle of the same state, read with ``weights_only=True``,
so those runs and the checkpoints committed under experiments/ continue with ``--resume``.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from repsr.atomic import atomic_write
from repsr.errors import UserError
from repsr.train.config import TrainConfig, config_from_json
from repsr.train.tensor_tree import flatten, unflatten
from repsr.weights import safe_torch_load

FORMAT = "repsr-train-2"
LEGACY_FORMAT = "repsr-train-1"
STATE_KEY = "repsr.checkpoint"  # the metadata entry holding the JSON skeleton
CHECKPOINT = "checkpoints/latest.safetensors"  # inside a run's output folder
LEGACY_CHECKPOINT = "checkpoints/latest.pt"
ADVICE = ("resume from a copy of a good checkpoint, or start afresh without --resume (the run's "
          "model_latest.safetensors can seed it through train.init_weights)")


def rng_state() -> dict[str, Any]:
    """All RNG states as tensors and numbers: what both formats store without pickling an object."""
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
    """Write ``state`` plus the RNG states to ``path`` as a ``repsr-train-2`` safetensors file, atomically."""
    tensors, skeleton = flatten({"rng": rng_state(), **state})
    metadata = {"format": FORMAT, STATE_KEY: json.dumps(skeleton, allow_nan=False, separators=(",", ":"))}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def save_run_checkpoint(output: str | Path, state: dict[str, Any]) -> None:
    """Write the checkpoint of the run in ``output``; a ``latest.pt`` it was resumed from is superseded: removed."""
    save_checkpoint(Path(output) / CHECKPOINT, state)
    (Path(output) / LEGACY_CHECKPOINT).unlink(missing_ok=True)


def find_checkpoint(output: str | Path) -> Path | None:
    """The checkpoint a run in ``output`` resumes from: ``latest.safetensors``, else an older ``latest.pt``.

    A run resumed from ``latest.pt`` removes it once its first ``latest.safetensors`` is written, so
    both at once means one was copied in by hand; which to continue is then the user's call.
    """
    new, old = Path(output) / CHECKPOINT, Path(output) / LEGACY_CHECKPOINT
    if new.is_file() and old.is_file():
        raise UserError(f"{new.parent} holds both {new.name} and {old.name} (the older format): "
                        "delete the one not to resume from")
    return new if new.is_file() else old if old.is_file() else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint of either format safely: what :func:`save_checkpoint` was given, plus ``rng``.

    The format is told by the file's first bytes, not its name: a torch zip (``PK``) or a raw pickle
    (``0x80``) without safetensors' ``{`` at byte 8 is the old format, anything else must be
    safetensors. A missing, empty, corrupt or foreign file is a one-line UserError that says what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint to resume from (run without --resume to start fresh)")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte header length (any first byte, 0x80 included), then the JSON header's "{"
    if head[8:] != b"{" and (head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"):
        return _load_legacy(path)
    return _load_safetensors(path)


def _load_legacy(path: Path) -> dict[str, Any]:
    try:
        state = safe_torch_load(path, "checkpoint")
    except UserError as exc:
        raise UserError(f"{exc}; {ADVICE}") from None
    if not isinstance(state, dict) or state.get("format") != LEGACY_FORMAT:
        raise UserError(f"{path}: not a repsr training checkpoint; {ADVICE}")
    del state["format"]  # what the new format keeps in its metadata
    return state


def _load_safetensors(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: checkpoint is empty (0 bytes: its write was interrupted); {ADVICE}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            names = f.keys()  # a safe_open handle is not iterable
            tensors = {name: f.get_tensor(name) for name in names}
    except (SafetensorError, OSError, ValueError) as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path}: checkpoint is truncated or corrupt ({size:,} bytes; {text[:120]}); "
                        f"{ADVICE}") from None
    written = metadata.get("format", "")
    if written.startswith("repsr-train-") and written != FORMAT:
        raise UserError(f"{path}: checkpoint format {written} is not {FORMAT}, the one this repsr reads; "
                        "upgrade repsr to resume it")
    if written != FORMAT or STATE_KEY not in metadata:
        raise UserError(f"{path}: not a repsr training checkpoint; {ADVICE}")
    try:
        state = unflatten(json.loads(metadata[STATE_KEY]), tensors)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise UserError(f"{path}: checkpoint is corrupt ({exc}); {ADVICE}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a repsr training checkpoint; {ADVICE}")
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
