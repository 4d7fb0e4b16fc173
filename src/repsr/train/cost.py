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
from repsr.global_state import preserved
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
    with torch.random.fork_rng(devices=[]):  # seeded for repeatable weights and data; the caller's stream untouched
        torch.manual_seed(seed)
        model = build_model(setup.model).train()
        c, s = setup.model.in_channels, setup.model.scale
        lr = torch.rand(batch, c, patch, patch)
        hr = torch.rand(batch, c, patch * s, patch * s)
    if setup.switched:
        freeze_bn(model)
    set_merged_forward(model, setup.merged)
    net = torch.compile(model) if setup.compile else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))

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
    """Whether a family's step cost changes at the BN switch (its weights drawn aside the caller's RNG stream)."""
    with torch.random.fork_rng(devices=[]):
        return bool(batchnorm_layers(build_model(config)))


def run_mean_ms(before: float, after: float, switch: float) -> float:
    """Mean step of a run that switches at fraction ``switch``: ``switch * before + (1 - switch) * after``."""
    return switch * before + (1.0 - switch) * after


@dataclass
class FamilyCost:
    """One family at one precision: ms per step in each phase, the run means and their ratios to the reference."""

    arch: str
    precision: str  # "fp32", "bf16", "fp32 compiled", "bf16 compiled"
    before_ms: float  # before the BN switch (= after_branch_ms for a BN-free family)
    after_branch_ms: float
    after_merged_ms: float
    mean_branch_ms: float = 0.0
    mean_merged_ms: float = 0.0
    ratio_branch: float = 0.0  # mean_branch_ms / the reference family's fp32 step
    ratio: float = 0.0  # mean_merged_ms / the reference family's fp32 step


@dataclass
class FamilyCosts:
    """``repsr bench-train``'s table: every family and precision, measured side by side; the last family is the
    reference of the ratios."""

    blocks: int
    channels: int
    scale: int
    batch: int
    patch: int
    threads: int  # torch threads the steps ran on
    reps: int
    rounds: int
    switch: float  # the BN switch as a fraction of the run, weighing the two phases in the means
    rows: list[FamilyCost]
    warmup_s: dict[str, float]  # per setup: warm-up seconds (a compile included)


def _family_setups(archs: list[str], scale: int, blocks: int, channels: int, compile_too: bool
                   ) -> tuple[dict[str, StepSetup], list[tuple[str, str, str, bool]]]:
    setups: dict[str, StepSetup] = {}
    plan: list[tuple[str, str, str, bool]] = []
    precisions = [("fp32", False, False), ("bf16", True, False)]
    if compile_too:
        precisions += [("fp32 compiled", False, True), ("bf16 compiled", True, True)]
    for arch in archs:
        model = ModelConfig(arch=arch, scale=scale, blocks=blocks, channels=channels)
        bn = has_bn(model)
        for label, bf16, comp in precisions:
            key = f"{arch}|{label}"
            setups[key + "|after_merged"] = StepSetup(model, bf16, merged=True, switched=True, compile=comp)
            setups[key + "|after_branch"] = StepSetup(model, bf16, merged=False, switched=True, compile=comp)
            if bn:
                setups[key + "|before"] = StepSetup(model, bf16, merged=True, switched=False, compile=comp)
            plan.append((arch, label, key, bn))
    return setups, plan


def family_costs(archs: list[str], blocks: int, channels: int, scale: int, batch: int, patch: int, switch: float,
                 reps: int = 3, rounds: int = 3, threads: int | None = None, compile_too: bool = False) -> FamilyCosts:
    """Step cost of each VGG-style family (fp32 and bf16, compiled too if asked) in both phases of a run.

    ``threads`` (None: the caller's) is torch's thread count for the measurement only.
    """
    setups, plan = _family_setups(archs, scale, blocks, channels, compile_too)
    with preserved():
        if threads:
            torch.set_num_threads(threads)
        used = torch.get_num_threads()
        ms, warmup_s = step_ms(setups, batch, patch, reps, rounds)
    rows = []
    for arch, label, key, bn in plan:
        after_b, after_m = ms[key + "|after_branch"], ms[key + "|after_merged"]
        before = ms[key + "|before"] if bn else after_b
        rows.append(FamilyCost(arch, label, before, after_b, after_m,
                               run_mean_ms(before, after_b, switch) if bn else after_b,
                               run_mean_ms(before, after_m, switch) if bn else after_m))
    # The reference's fp32 step, timed twice (branch and merged forward are the same convs for a plain
    # net): the smaller is the less disturbed measurement.
    ref_row = next(r for r in rows if r.arch == archs[-1] and r.precision == "fp32")
    reference = min(ref_row.mean_branch_ms, ref_row.mean_merged_ms)
    for row in rows:
        row.ratio_branch = row.mean_branch_ms / reference
        row.ratio = row.mean_merged_ms / reference
    return FamilyCosts(blocks, channels, scale, batch, patch, used, reps, rounds, switch, rows, warmup_s)
