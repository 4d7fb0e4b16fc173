"""Typed, frozen configuration of a training run, read strictly from YAML plus ``--set`` overrides.

A run is ``TrainConfig{model, data, optim, train, output, seed}``. Every section is a frozen
dataclass checked by :func:`repsr.config.from_dict`, so a typo (``bn_swich``) or a wrong type is a
one-line :class:`~repsr.errors.ConfigError` naming the file and the dotted key instead of a silent
default. Defaults follow the field (ECBSR/BasicSR): L1 loss, Adam (0.9, 0.99), lr 5e-4, LR patch 64,
batch 32, and RepSR's BN switch at 80% of the iterations (SPEC §1).
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from repsr.config import ModelConfig, apply_overrides, apply_values, from_dict, load_yaml
from repsr.data.degrade import TrainDegradation
from repsr.errors import ConfigError
from repsr.models.registry import check_config


@dataclass(frozen=True)
class DataConfig:
    """Where patches come from. ``train``: HR folders; ``val``: EDSR-layout sets (``HR/``, ``LR_bicubic/``)."""

    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    # How LR images are made from the whole (mod-cropped) HR image: MATLAB bicubic, NTIRE's Pillow
    # bicubic + JPEG (Bicubic++'s setting, SPEC §3), or "mixed": every image once each way.
    degradation: TrainDegradation = "bicubic"
    jpeg_quality: int = 90
    # Which image a patch comes from: "image" = every image equally often (one patch per image per
    # epoch, BasicSR's way, right for sets of similar sizes), "area" = in proportion to the image's
    # area (right when small crops and multi-megapixel photos are mixed).
    sampling: Literal["image", "area"] = "image"
    # DataLoader worker processes; 0 = in-process (best on a 2-core CPU, where workers steal compute).
    workers: int = 0
    # Validate on at most this many images per set (None = all): keeps validation cheap in smoke runs.
    val_max_images: int | None = None


@dataclass(frozen=True)
class OptimConfig:
    """Loss, optimiser and learning-rate schedule (the base rate itself is ``train.lr``)."""

    loss: Literal["l1", "mse"] = "l1"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "multistep", "linear"] = "constant"
    # multistep: iterations (absolute ints, or fractions of train.iters) where lr is multiplied by gamma.
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.5
    # cosine / linear: the rate it decays to by the last iteration.
    min_lr: float = 1e-7
    # Gradient-norm clipping (None = off).
    grad_clip: float | None = None


@dataclass(frozen=True)
class LoopConfig:
    """Length, batch, BN switch, validation/checkpoint cadence and device options of the loop."""

    iters: int = 100_000
    # Weights to start from (a repsr .safetensors holding exactly the ``model`` section's net), or
    # None for a fresh init: how a fine-tune (Bicubic++ stages 2 and 3) continues an earlier net.
    init_weights: str | None = None
    batch_size: int = 32
    patch_size: int = 64  # LR patch side; the HR patch is scale times larger
    lr: float = 5e-4
    # RepSR's BN switch: a fraction of ``iters`` in (0, 1] written with a dot (0.8; 1.0 = at the end),
    # or an absolute iteration >= 2 (an int); null/false for none. ``1`` and ``0`` are refused: they
    # read as "100%" and "none" but would mean iterations. At the switch BN statistics are
    # re-estimated and frozen for good.
    bn_switch: int | float | bool | None = 0.8
    # Batches over which population statistics are re-estimated at the switch; 0 keeps BN's running
    # (exponential-average) statistics as they are.
    bn_calib_batches: int = 100
    freeze_bn_affine: bool = False
    val_every: int = 5000  # 0: validate only at the end
    ckpt_every: int = 1000  # 0: checkpoint only at the end
    log_every: int = 100
    ema: float | None = None  # EMA decay of the weights (e.g. 0.999); None = off
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Mixed precision of the forward: bf16 on CPU or CUDA, fp16 on CUDA only; "auto" = bf16 where the
    # hardware does it natively (AVX512-BF16/AMX CPUs, Ampere+ GPUs), else float32 (repsr.train.precision).
    # Loss, BN statistics, the merged kernels and the optimiser state stay float32.
    amp: Literal[False, "auto", "bf16", "fp16"] = "auto"
    # Run every block that is linear in its input (BN-free families always, BN families after the
    # switch) as the one conv of its differentiable equivalent kernel: same function, same gradients,
    # a fraction of the cost. Parameters, checkpoints and saved files are unchanged.
    merged_forward: bool = True
    channels_last: bool = True  # CUDA only
    compile: bool = False
    sync_bn: bool = False  # DDP: BN statistics over the global batch
    deterministic: bool = False
    # CPU threads for torch. None: torch's default, one per physical core, which is fastest on a
    # quiet machine (measured on 2 cores: a RepSR step 1.8x faster than with 1 thread). Set 1 when
    # other jobs share the cores: OpenMP threads spin-waiting for a busy core can be 2-5x slower.
    threads: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run; stored as JSON inside every checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    output: str = "runs/repsr"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def bn_switch_iteration(config: LoopConfig) -> int | None:
    """The iteration at which BN switches to population statistics, or None for no switch.

    A float is a fraction of ``iters`` (0.8 -> 80%); an int is an absolute iteration (>= 2, checked on load).
    """
    value = config.bn_switch
    if value is None or value is False:
        return None
    if isinstance(value, float):
        return max(0, round(value * config.iters))
    return int(value)


def _validate(config: TrainConfig, source: str) -> None:
    """Range checks the type system cannot express, each a one-line error naming the key."""
    t, o, d = config.train, config.optim, config.data
    try:
        family = check_config(config.model)  # the arch exists and takes every option set
    except ValueError as exc:
        raise ConfigError(f"{source}: model: {exc}") from None
    checks = [
        (t.iters >= 1, "train.iters", "must be >= 1"),
        (t.batch_size >= 1, "train.batch_size", "must be >= 1"),
        (t.patch_size >= 4, "train.patch_size", "must be >= 4"),
        (t.lr > 0, "train.lr", "must be > 0"),
        (t.bn_switch is not True, "train.bn_switch", "must be a fraction, an iteration or null, not true"),
        (not isinstance(t.bn_switch, float) or 0 < t.bn_switch <= 1, "train.bn_switch",
         "as a fraction must lie in (0, 1]"),
        (not isinstance(t.bn_switch, int) or isinstance(t.bn_switch, bool) or t.bn_switch >= 2, "train.bn_switch",
         f"= {t.bn_switch} is ambiguous: write a fraction with a dot (1.0 = at the end), an iteration >= 2, "
         "or null for none"),
        (t.bn_calib_batches >= 0, "train.bn_calib_batches", "must be >= 0 (0: keep running statistics)"),
        (t.val_every >= 0 and t.ckpt_every >= 0 and t.log_every >= 1, "train.val_every/ckpt_every/log_every",
         "must be >= 0 (log_every >= 1)"),
        (t.ema is None or 0 < t.ema < 1, "train.ema", "must lie in (0, 1) or be null"),
        (len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", "must be two numbers in [0, 1)"),
        (o.gamma > 0 and o.min_lr >= 0, "optim.gamma/min_lr", "must be positive"),
        (d.workers >= 0, "data.workers", "must be >= 0"),
        (t.threads is None or t.threads >= 1, "train.threads", "must be >= 1 or null"),
        (t.amp != "fp16" or not t.device.startswith("cpu"), "train.amp",
         "fp16 runs on CUDA only; use bf16 on a CPU"),
        (1 <= d.jpeg_quality <= 100, "data.jpeg_quality", "must lie in [1, 100]"),
        (bool(d.train), "data.train", "needs at least one folder of HR training images"),
        (family.trainable, "model.arch",
         f"'{family.name}' is a merged inference net; train a training-time family that merges into it"),
    ]
    for ok, key, message in checks:
        if not ok:
            raise ConfigError(f"{source}: '{key}' {message}")


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce_floats(cls: Any, data: Any) -> Any:
    """Turn ``"5e-4"`` into 5e-4 where the schema expects a number.

    PyYAML follows YAML 1.1, where ``5e-4`` (no dot) is a *string*; every SR config writes learning
    rates that way, so rejecting it would be pedantic. Only number-typed fields are touched.
    """
    if not dataclasses.is_dataclass(cls) or not isinstance(data, dict):
        return data
    hints = typing.get_type_hints(cls)
    out = dict(data)
    for key, value in data.items():
        tp = hints.get(key)
        if tp is None:
            continue
        if dataclasses.is_dataclass(tp):
            out[key] = _coerce_floats(tp, value)
        elif isinstance(value, str) and float in _leaf_types(tp) and _FLOAT.fullmatch(value.strip()):
            out[key] = float(value)
        elif isinstance(value, list) and float in _leaf_types(tp):
            out[key] = [float(v) if isinstance(v, str) and _FLOAT.fullmatch(v.strip()) else v for v in value]
    return out


def _leaf_types(tp: Any) -> set[Any]:
    args = typing.get_args(tp)
    return {tp} if not args else set().union(*(_leaf_types(a) for a in args))


def load_train_config(path: str | Path | None, overrides: list[str] | None = None,
                      values: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML run config, set the typed dotted ``values`` (a command's own options), apply dotted ``--set``
    overrides (text, parsed as YAML; they win over ``values``) and validate it strictly."""
    source = str(path) if path is not None else "<defaults>"
    data = load_yaml(path) if path is not None else {}
    if values:
        data = apply_values(data, values)
    if overrides:
        data = apply_overrides(data, overrides)
    config = from_dict(TrainConfig, _coerce_floats(TrainConfig, data), source)
    _validate(config, source)
    return config


def config_from_json(text: str, source: str) -> TrainConfig:
    """Rebuild the run config stored in a checkpoint."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(f"{source}: stored config is not valid JSON") from None
    return from_dict(TrainConfig, data, source)
