"""Training cost per iteration, measured side by side for several model configs.

The wall time a run logs depends on whatever else the machine was doing at that moment, so it
cannot rank variants that trained at different times. Here every config is timed in the same
process, round-robin (``rounds`` passes over all configs, ``reps`` steps each), on synthetic
batches of the run's batch and patch size, and the best pass is kept: noise only ever adds time.
Data loading is excluded (the trainer measures it at ~1% of a step on CPU).

    python -m repsr.study.cost --archs repsr ecbsr plain --batch 32 --patch 64 --scale 4
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from repsr.config import ModelConfig
from repsr.models import build_model


def _stepper(config: ModelConfig, batch: int, patch: int, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(config).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))
    lr = torch.rand(batch, config.in_channels, patch, patch)
    hr = torch.rand(batch, config.in_channels, patch * config.scale, patch * config.scale)

    def step() -> None:
        loss = F.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def step_ms(configs: dict[str, ModelConfig], batch: int, patch: int, reps: int = 3,
            rounds: int = 3) -> dict[str, float]:
    """Milliseconds per training step (forward, L1, backward, Adam) of each config, best of ``rounds``."""
    steppers = {name: _stepper(c, batch, patch) for name, c in configs.items()}
    for step in steppers.values():
        step()  # warm-up: allocator, oneDNN primitive caches
    best = {name: float("inf") for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                step()
            best[name] = min(best[name], (time.perf_counter() - t0) * 1000 / reps)
    return best


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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["repsr", "ecbsr", "plain"])
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = {a: ModelConfig(arch=a, scale=args.scale, blocks=args.blocks, channels=args.channels) for a in args.archs}
    costs = step_ms(configs, args.batch, args.patch, args.reps, args.rounds)
    base = costs[args.archs[-1]]
    print(f"M{args.blocks}C{args.channels} x{args.scale}, batch {args.batch}, LR patch {args.patch}, "
          f"{torch.get_num_threads()} thread(s), best of {args.rounds} rounds x {args.reps} steps")
    print("| arch | ms/iter | it/s | x " + args.archs[-1] + " |\n|---|---|---|---|")
    for arch, ms in costs.items():
        print(f"| {arch} | {ms:.0f} | {1000 / ms:.2f} | {ms / base:.2f} |")


if __name__ == "__main__":
    main()
