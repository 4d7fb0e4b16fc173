"""Training cost per step, measured side by side: families x precision x branch/merged forward.

The wall time a run logs depends on whatever else the machine was doing at that moment, so it
cannot rank setups that were timed at different moments. Here every setup is timed in the same
process, round-robin (``rounds`` passes over all setups, ``reps`` steps each), on synthetic batches
of the run's batch and patch size, and the best pass is kept: noise only ever adds time. Data
loading is excluded (the trainer measures it at ~1% of a step on CPU).

A step is what :class:`~repsr.train.loop.Trainer` does: forward (under bf16 autocast when asked),
L1 loss in float32, backward, Adam. A BN family costs differently before and after RepSR's switch
(batch statistics and branches, then frozen BN and, with ``merged``, one conv per block), so
``switched`` selects the phase; a run's mean step is the two weighted by the switch point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from repsr.bn import batchnorm_layers, freeze_bn
from repsr.config import ModelConfig
from repsr.models import build_model
from repsr.reparam.base import set_merged_forward


@dataclass(frozen=True)
class StepSetup:
    """One way of running a training step: the model, its precision, its forward and its phase."""

    model: ModelConfig
    bf16: bool = False  # bf16 autocast for the forward (CPU or CUDA)
    merged: bool = True  # train.merged_forward
    switched: bool = False  # the phase after the BN switch (BN frozen); no effect on BN-free families
    compile: bool = False  # torch.compile around the model


def _stepper(setup: StepSetup, batch: int, patch: int, seed: int = 0) -> Callable[[], None]:
    torch.manual_seed(seed)
    model = build_model(setup.model).train()
    if setup.switched:
        freeze_bn(model)
    set_merged_forward(model, setup.merged)
    net = torch.compile(model) if setup.compile else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))
    c, s = setup.model.in_channels, setup.model.scale
    lr = torch.rand(batch, c, patch, patch)
    hr = torch.rand(batch, c, patch * s, patch * s)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=setup.bf16):
            sr = net(lr)
        loss = F.l1_loss(sr.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        opt.step()

    return step


def step_ms(setups: dict[str, StepSetup], batch: int, patch: int, reps: int = 3, rounds: int = 3,
            warmup: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """Milliseconds per training step of each setup (best of ``rounds``) and its warm-up seconds.

    The warm-up (allocator, oneDNN primitive caches, and for compiled setups the compilation) is
    timed separately, so a compiled setup's one-off cost is reported, not hidden.
    """
    steppers: dict[str, Callable[[], None]] = {}
    warmup_s: dict[str, float] = {}
    for name, setup in setups.items():
        t0 = time.perf_counter()
        steppers[name] = _stepper(setup, batch, patch)
        for _ in range(max(warmup, 1)):
            steppers[name]()
        warmup_s[name] = time.perf_counter() - t0
    best = {name: float("inf") for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                step()
            best[name] = min(best[name], (time.perf_counter() - t0) * 1000 / reps)
    return best, warmup_s


def forward_ms(models: dict[str, torch.nn.Module], x: torch.Tensor, reps: int = 3, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per inference of each model on ``x``, round-robin and best of ``rounds`` (as above)."""
    best = {name: float("inf") for name in models}
    with torch.no_grad():
        for model in models.values():
            model(x)  # warm-up
        for _ in range(rounds):
            for name, model in models.items():
                t0 = time.perf_counter()
                for _ in range(reps):
                    model(x)
                best[name] = min(best[name], (time.perf_counter() - t0) * 1000 / reps)
    return best


def has_bn(config: ModelConfig) -> bool:
    """Whether a family's step cost changes at the BN switch."""
    return bool(batchnorm_layers(build_model(config)))


def run_mean_ms(before: float, after: float, switch: float) -> float:
    """Mean step of a run that switches at fraction ``switch``: ``switch * before + (1 - switch) * after``."""
    return switch * before + (1.0 - switch) * after
