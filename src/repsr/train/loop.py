"""The training loop: patches in, L1 steps, the BN switch, validation, checkpoints, resume.

Determinism is by construction: the batch of iteration ``i`` is a pure function of ``(seed, i)``
(:class:`~repsr.data.patches.PatchBatches`), the BN switch happens at a fixed iteration with its
own batch stream, and a checkpoint stores model/optimizer/scheduler/EMA/RNG state. So on CPU a run
interrupted at iteration k and resumed is bit-identical to one that never stopped.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

from repsr.data.datasets import EvalDataset, find_dataset
from repsr.data.images import Pair
from repsr.data.patches import PatchBatches, load_pairs, to_float
from repsr.errors import ConfigError, OutputError, UserError
from repsr.global_state import capture, restore
from repsr.models import build_model
from repsr.reparam.base import set_merged_forward
from repsr.train import ddp
from repsr.train.bn_switch import freeze_bn_affine, switch_bn
from repsr.train.checkpoint import (
    CHECKPOINT,
    check_resumable,
    find_checkpoint,
    load_checkpoint,
    rng_state,
    save_run_checkpoint,
    set_rng_state,
)
from repsr.train.config import TrainConfig, bn_switch_iteration
from repsr.train.ema import EMA
from repsr.train.outputs import metrics_size, prepare_output, save_merged, save_weights, truncate_metrics
from repsr.train.precision import resolve_amp
from repsr.train.progress import Reporter
from repsr.train.result import TrainResult
from repsr.train.schedule import build_optimizer
from repsr.train.sync_bn import convert_sync_switchable_bn
from repsr.train.validate import load_val_sets, score_merged, validate
from repsr.weights import load_state

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs: a run's model initialisation is a function of its seed.

    A :class:`Trainer` does this for its run and puts the caller's RNG states back when the run ends.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


CHECKPOINT_COPIES = 2  # free space needed at start: the checkpoint and its atomic replacement side by side


def preflight(config: TrainConfig, has_pairs: bool) -> None:
    """Check the whole config against the disk before any work: every training and validation folder, and an
    output folder that can hold two checkpoints -- not at the first validation, 5,000 iterations in."""
    if not has_pairs:
        for folder in config.data.train:
            if not Path(folder).is_dir():
                raise ConfigError(f"data.train: {folder} is not a folder")
    for folder in config.data.val:
        try:
            find_dataset(folder, config.model.scale)
        except UserError as exc:
            raise ConfigError(f"data.val: {exc}") from None
    output = Path(config.output).resolve()
    existing = next((p for p in (output, *output.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        why = "permission denied" if existing is not None and existing.is_dir() else "a part of the path is a file"
        raise OutputError(f"{config.output}: cannot create the output folder ({why})")
    try:
        model = build_model(config.model)
    except ValueError as exc:
        raise UserError(f"model: {exc}") from None
    params = sum(p.numel() for p in model.parameters())
    # weights, two Adam moments, EMA and the merged/latest weight files, fp32
    need = CHECKPOINT_COPIES * params * 4 * 6 + (8 << 20)
    free = shutil.disk_usage(existing).free
    if free < need:
        raise OutputError(f"output: {existing} has {free >> 20} MiB free; this run needs ~{need >> 20} MiB for its "
                          "checkpoints: free space or choose another output")


class Trainer:
    """One training run; ``Trainer(config, resume=...).run()`` does everything and returns a :class:`TrainResult`.

    ``pairs`` (optional) are decoded training pairs to train on instead of loading ``data.train``:
    for callers that run several short runs on the same images (the rounds of pruning).
    """

    def __init__(self, config: TrainConfig, resume: bool = False, profile: bool = False,
                 pairs: list[Pair] | None = None) -> None:
        self.config, self.profile = config, profile
        self.output = Path(config.output)
        self.ckpt_path = self.output / CHECKPOINT  # where it writes; find_checkpoint also finds an older latest.pt
        # The process-wide settings a run changes -- torch's threads and determinism (train.threads,
        # train.deterministic) and the global RNGs it seeds -- are the caller's again when run() returns, or when
        # this constructor fails: a library leaves its caller's process as it found it.
        self._caller = capture(), rng_state()
        try:
            self._start(resume, pairs)
        except BaseException:
            self.restore_global_state()
            raise

    def _start(self, resume: bool, pairs: list[Pair] | None) -> None:
        """Checks, the run's own settings and seed, then the model, optimizer, EMA and data (resumed if asked)."""
        config = self.config
        existing = find_checkpoint(self.output)
        if not resume and existing is not None:
            raise UserError(f"{existing} exists: pass --resume to continue it, or choose another output")
        self.info = ddp.detect()
        if self.info.is_main:
            preflight(config, pairs is not None)
        self.device = ddp.pick_device(config.train.device, self.info)
        ddp.init(self.info, self.device)
        self.cuda = self.device.type == "cuda"
        self.amp = resolve_amp(config.train.amp, self.device)
        if self.amp == "fp16" and not self.cuda:
            raise UserError("train.amp: fp16 runs on CUDA only; use bf16 on a CPU")
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        seed_everything(config.seed)
        if config.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.model = self._build_model()
        if config.train.init_weights:
            self._load_init_weights(config.train.init_weights)
        set_merged_forward(self.model, config.train.merged_forward)
        self.optimizer, self.scheduler = build_optimizer(self.model, config)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda and self.amp == "fp16")
        self.ema = EMA(self.model, config.train.ema) if config.train.ema else None
        self.iteration, self.best = 0, {"psnr": -math.inf, "iter": -1}
        self.switched = False
        self.switch_at = bn_switch_iteration(config.train)
        if resume:
            self._resume()
        self.net = self._wrap()
        self.data = self._build_data(pairs)
        self.wait_s = self.step_s = 0.0
        self.val_sets: list[EvalDataset] | None = None

    def _build_model(self) -> torch.nn.Module:
        try:
            model = build_model(self.config.model)
        except ValueError as exc:
            raise UserError(f"model: {exc}") from None
        model = model.to(self.device)
        if self.cuda and self.config.train.channels_last:
            model = model.to(  # type: ignore[call-overload]  # Module.to's stub lacks memory_format
                memory_format=torch.channels_last)
        if self.config.train.sync_bn and self.info.enabled:
            convert_sync_switchable_bn(model)
        return model.train()

    def _load_init_weights(self, path: str) -> None:
        """Start from the weights in ``path`` (``train.init_weights``); the file must hold the configured model."""
        config, state, _ = load_state(path)
        if config != self.config.model:
            raise ConfigError(f"train.init_weights: {path} holds {config.arch} M{config.blocks}C{config.channels} "
                              f"x{config.scale}, not the configured model section")
        self.model.load_state_dict(state, strict=True)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (RNG states apart: the checkpoint adds them)."""
        return {
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "bn_switch": {"switched": self.switched, "at": self.switch_at},
            "best": dict(self.best),
            "config": self.config.to_json(),
            "metrics_bytes": metrics_size(self.output),
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "<state>") -> None:
        """Continue from what :meth:`state_dict` returned; a state of another model is a one-line error."""
        check_resumable(self.config, state, source)
        if (self.ema is None) != (state["ema"] is None):
            raise UserError(f"{source}: train.ema differs from the checkpoint's (on/off cannot change on resume)")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise UserError(f"{source}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.iteration = int(state["iteration"])
        self.switched = bool(state["bn_switch"]["switched"])
        self.best = dict(state["best"])
        if self.switched and self.config.train.freeze_bn_affine:
            freeze_bn_affine(self.model)

    def _resume(self) -> None:
        """Load the checkpoint (either format), restore the RNGs and cut the metrics log back to it."""
        path = find_checkpoint(self.output) or self.ckpt_path  # none: load_checkpoint says so
        state = load_checkpoint(path)
        self.load_state_dict(state, str(path))
        set_rng_state(state["rng"])
        if self.info.is_main:
            truncate_metrics(self.output, state.get("metrics_bytes"))
            print(f"resuming from iteration {self.iteration} ({path})", file=sys.stderr, flush=True)

    def _meta(self) -> dict[str, str]:
        return {"iteration": str(self.iteration), "bn_frozen": str(self.switched)}

    def _wrap(self) -> torch.nn.Module:
        """DDP (under torchrun) and torch.compile around the model; rebuilt when params stop training."""
        net = ddp.wrap(self.model, self.info, self.device)
        if not self.config.train.compile:
            return net
        return cast(torch.nn.Module, torch.compile(net))  # an OptimizedModule; the stub types any callable's result

    def _build_data(self, pairs: list[Pair] | None) -> PatchBatches:
        c = self.config
        if pairs is None:
            pairs = load_pairs(c.data.train, c.model.scale, c.train.patch_size, c.data.degradation,
                               c.data.jpeg_quality)
        return PatchBatches(pairs, c.model.scale, c.train.patch_size, c.train.batch_size, c.seed,
                            self.info.rank, self.info.world_size, sampling=c.data.sampling)

    def _loader(self, start: int, stop: int) -> torch.utils.data.DataLoader[tuple[Tensor, Tensor]]:
        workers = self.config.data.workers
        return torch.utils.data.DataLoader(self.data, batch_size=None, sampler=range(start, stop),
                                           num_workers=workers, pin_memory=self.cuda,
                                           prefetch_factor=4 if workers else None)

    def _maybe_switch(self) -> None:
        """RepSR's switch at its iteration: re-estimate BN statistics, freeze them (SPEC §1)."""
        if self.switched or self.switch_at is None or self.iteration < self.switch_at:
            return
        c = self.config
        calib = PatchBatches(self.data.pairs, c.model.scale, c.train.patch_size, c.train.batch_size, c.seed,
                             self.info.rank, self.info.world_size, stream=1, sampling=c.data.sampling)
        batches = None if c.train.bn_calib_batches == 0 else (
            to_float(calib[k][0], self.device, self.cuda and c.train.channels_last)
            for k in range(c.train.bn_calib_batches))
        with self._autocast():
            count = switch_bn(self.model, batches, c.train.freeze_bn_affine)
        self.switched = True
        if count and c.train.freeze_bn_affine:
            self.net = self._wrap()  # DDP must forget the parameters that no longer get gradients
        if self.ema is not None:
            self.ema.copy_buffers(self.model)  # the EMA copy switches together with the model
        if count:  # BN-free families (plain, ECB) have nothing to switch: say nothing
            how = (f"re-estimated over {c.train.bn_calib_batches} batches" if c.train.bn_calib_batches
                   else "kept at their running averages")
            self.reporter.line(f"BN switch at iteration {self.iteration}: {count} BN layers {how} and frozen")
        self.reporter.scalars(self.iteration, {"train/bn_switch": 1.0})
        self.reporter.record(self.iteration, "bn_switch", {"layers": count})

    def describe_setup(self) -> str:
        """One line on how this run computes: device, threads, precision, forward."""
        m, t = self.config.model, self.config.train
        where = f"{self.device}" + ("" if self.cuda else f", {torch.get_num_threads()} thread(s)")
        precision = f"{self.amp} autocast" if self.amp else "float32"
        if t.amp == "auto":
            precision += " (amp: auto)"
        forward = "merged-kernel forward wherever a block is linear" if t.merged_forward else "branch forward"
        return f"{m.arch} M{m.blocks}C{m.channels} x{m.scale} on {where}: {precision}, {forward}"

    def _autocast(self) -> Any:
        """Autocast for the forward: bf16 on CPU or CUDA, fp16 on CUDA (the config rejects fp16 on CPU)."""
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype, enabled=bool(self.amp))

    def _step(self, lr_u8: Tensor, hr_u8: Tensor) -> float:
        """One optimisation step on a uint8 batch; returns the loss."""
        c = self.config
        channels_last = self.cuda and c.train.channels_last
        lr, hr = to_float(lr_u8, self.device, channels_last), to_float(hr_u8, self.device, channels_last)
        if c.model.bgr:  # patches are RGB; a net trained on BGR (the official Bicubic++) sees them flipped
            lr, hr = lr.flip(1), hr.flip(1)
        with self._autocast():
            sr = self.net(lr)
        loss_fn = F.l1_loss if c.optim.loss == "l1" else F.mse_loss
        loss = loss_fn(sr.float(), hr)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # Tensor.backward is unannotated
        if c.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return float(loss.detach())

    def eval_model(self) -> torch.nn.Module:
        """The weights that are validated and shipped: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def _periodic(self, stop: int) -> None:
        t, i = self.config.train, self.iteration
        last = i == stop
        if self.config.data.val and self.info.is_main and ((t.val_every and i % t.val_every == 0) or last):
            self.validate()
        if (t.ckpt_every and i % t.ckpt_every == 0) or last:
            self.checkpoint()

    def validate(self) -> dict[str, Any]:
        c = self.config
        if self.val_sets is None:
            self.val_sets = load_val_sets(c.data.val, c.model.scale, c.data.val_max_images)
        result = validate(self.eval_model(), self.val_sets, c.model.scale)
        scalars = {}
        for kind in ("graph", "merged"):
            for name, s in result[kind].items():
                scalars.update({f"val_{kind}/{name}_psnr": s["psnr"], f"val_{kind}/{name}_ssim": s["ssim"]})
        record = {k: result[k] for k in ("graph", "merged", "gap")}
        summary = "  ".join(f"{n} {s['psnr']:.3f}/{s['ssim']:.4f}" for n, s in result["merged"].items())
        if self.ema is not None:  # what EMA buys, measured on the same trajectory: the live weights too
            record["live"] = score_merged(self.model, self.val_sets, c.model.scale)
            scalars.update({f"val_live/{n}_psnr": s["psnr"] for n, s in record["live"].items()})
            summary += "  | live weights: " + "  ".join(f"{n} {s['psnr']:.3f}" for n, s in record["live"].items())
        self.reporter.scalars(self.iteration, scalars)
        self.reporter.record(self.iteration, "val", record)
        self.reporter.line(f"val @ {self.iteration}: {summary}  (merge gap max "
                           f"{max(result['gap'].values(), default=0):.4f} dB)")
        if result["psnr"] > self.best["psnr"]:
            self.best = {"psnr": result["psnr"], "iter": self.iteration}
            save_weights(self.output, self.eval_model(), self._meta(), best=True)
        return result

    def checkpoint(self) -> None:
        if self.info.is_main:
            try:
                save_run_checkpoint(self.output, self.state_dict())
                save_weights(self.output, self.eval_model(), self._meta(), best=False)
            except OutputError as exc:  # the previous checkpoint is untouched (atomic write)
                raise OutputError(f"{exc}; the previous checkpoint is intact: free space, then run the same "
                                  "command with --resume") from None
        ddp.barrier(self.info)

    def run(self, stop_at: int | None = None) -> TrainResult:
        """Train up to ``train.iters`` (or ``stop_at``, which simulates an interruption for tests)."""
        c = self.config
        stop = min(c.train.iters, stop_at) if stop_at is not None else c.train.iters
        if self.info.is_main:  # before the Reporter: TensorBoard writes there too
            prepare_output(self.output, yaml.safe_dump(c.to_dict(), sort_keys=False))
        self.reporter = Reporter(self.output, c.train.iters, self.iteration, c.train.log_every,
                                 active=self.info.is_main)
        self.reporter.line(self.describe_setup())
        try:
            self._loop(stop)
            if self.iteration == c.train.iters:
                self._maybe_switch()  # a switch at 100% freezes BN for the final, merged model
                self._finish()
        finally:
            self.reporter.close()
            self.restore_global_state()
        ddp.shutdown(self.info)
        return TrainResult(self.output, self.iteration, self.reporter.start, self.step_s, self.wait_s,
                           self.switched, dict(self.best), self.model, self.eval_model(), self.state_dict())

    def restore_global_state(self) -> None:
        """Give the caller back what it had before this Trainer: torch's threads, deterministic-algorithms mode
        (every setting of :mod:`repsr.global_state`) and the Python, NumPy and torch RNG streams."""
        state, rng = self._caller
        restore(state)
        set_rng_state(rng)

    def _loop(self, stop: int) -> None:
        if self.iteration >= stop:
            return
        batches = iter(self._loader(self.iteration, stop))
        while self.iteration < stop:
            self._maybe_switch()
            t0 = time.perf_counter()
            lr_u8, hr_u8 = next(batches)
            t1 = time.perf_counter()
            loss = self._step(lr_u8, hr_u8)
            self.wait_s += t1 - t0
            self.step_s += time.perf_counter() - t1
            self.iteration += 1
            if not math.isfinite(loss):
                raise UserError(f"loss became {loss} at iteration {self.iteration} (lower train.lr or use amp: bf16)")
            self.reporter.step(self.iteration, ddp.mean_across_ranks(loss, self.info, self.device),
                               self.optimizer.param_groups[0]["lr"])
            self._periodic(stop)
        if self.profile:
            self.report_profile()

    def _finish(self) -> None:
        if self.info.is_main:
            save_weights(self.output, self.eval_model(), self._meta(), best=False)
            save_merged(self.output, self.eval_model(), self._meta(), {"iteration": str(self.best["iter"])})
            best = (f"best mean val PSNR {self.best['psnr']:.3f} dB at {self.best['iter']}" if self.best["iter"] >= 0
                    else "no validation sets")
            self.reporter.line(f"done: {self.iteration} iterations; {best}; outputs in {self.output}")

    def report_profile(self) -> None:
        total = self.wait_s + self.step_s
        done = self.iteration - self.reporter.start
        self.reporter.line(f"profile: {done / max(total, 1e-9):.3f} it/s over {done} iterations; "
                           f"waiting for data {100 * self.wait_s / max(total, 1e-9):.1f}% of the time")


def train(config: TrainConfig, resume: bool = False, profile: bool = False, stop_at: int | None = None,
          pairs: list[Pair] | None = None) -> TrainResult:
    """Run (or resume) a training run; returns its :class:`TrainResult`."""
    return Trainer(config, resume=resume, profile=profile, pairs=pairs).run(stop_at=stop_at)


__all__ = ["TrainResult", "Trainer", "train"]
