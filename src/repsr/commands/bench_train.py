"""``repsr bench-train``: training cost per step of each family, fp32/bf16 x branch/merged forward.

All setups are timed in one process, round-robin, best pass kept (:mod:`repsr.train.cost`), so
the ratios hold even when the machine is not quiet. A BN family is timed in both phases of a run:
before RepSR's switch (batch statistics, so branches whatever ``merged_forward`` says) and after it
(frozen BN: branches, or one conv per block with ``train.merged_forward``). The run mean weighs the
two by ``--switch``; BN-free families cost the same throughout.

    repsr bench-train --archs repsr ecbsr plain --batch 16 --patch 48 --switch 0.5
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from repsr.errors import UserError

if TYPE_CHECKING:
    from repsr.train.cost import FamilyCosts


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench-train", help="training step cost per family (fp32/bf16, branch/merged)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["repsr", "ecbsr", "plain"],
                   help="families to time; the last is the reference of the ratios (default: repsr ecbsr plain)")
    p.add_argument("--size", default="M4C16", help="network size MxCy (default M4C16)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="LR patch side (default 48)")
    p.add_argument("--switch", type=float, default=0.5, help="BN switch as a fraction of the run (default 0.5)")
    p.add_argument("--reps", type=int, default=3, help="steps per timed pass (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="round-robin passes, best kept (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, one per core)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd steps (compiles take minutes)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)


def _header(costs: FamilyCosts) -> str:
    return (f"M{costs.blocks}C{costs.channels} x{costs.scale}, batch {costs.batch}, LR patch {costs.patch}, "
            f"{costs.threads} thread(s), best of {costs.rounds} rounds x {costs.reps} steps; "
            f"run mean with the BN switch at {costs.switch:g}")


def run(args: argparse.Namespace) -> int:
    from repsr.models import FAMILIES, parse_preset
    from repsr.train.cost import family_costs

    vgg = sorted(name for name, family in FAMILIES.items() if family.block is not None)
    unknown = [a for a in args.archs if a not in vgg]
    if unknown:
        raise UserError(f"--archs: '{unknown[0]}' is not a training-time VGG-style family (choose from "
                        f"{', '.join(vgg)})")
    if not 0.0 <= args.switch <= 1.0:
        raise UserError("--switch must lie in [0, 1]")
    if min(args.batch, args.patch, args.reps, args.rounds, args.scale) < 1:
        raise UserError("--batch, --patch, --reps, --rounds and --scale must be >= 1")
    try:
        blocks, channels = parse_preset(args.size)
    except ValueError as exc:
        raise UserError(f"--size: {exc}") from None
    costs = family_costs(args.archs, blocks, channels, args.scale, args.batch, args.patch, args.switch, args.reps,
                         args.rounds, args.threads, args.compile)
    if args.json:
        print(json.dumps({"setup": _header(costs), "rows": [asdict(r) for r in costs.rows],
                          "warmup_s": {k: round(v, 2) for k, v in costs.warmup_s.items()}}, indent=1))
        return 0
    print(_header(costs))
    ref = f"x {args.archs[-1]} fp32"
    print(f"| family | precision | before switch (branches) | after switch, branches | after switch, merged "
          f"| run mean, branches | {ref} | run mean, merged | {ref} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in costs.rows:
        print(f"| {r.arch} | {r.precision} | {r.before_ms:.1f} | {r.after_branch_ms:.1f} | {r.after_merged_ms:.1f} "
              f"| {r.mean_branch_ms:.1f} | {r.ratio_branch:.2f} | {r.mean_merged_ms:.1f} | {r.ratio:.2f} |")
    print("ms per training step (forward, L1, backward, Adam); BN-free families have no 'before' phase.")
    if args.compile:
        slowest = max((v, k) for k, v in costs.warmup_s.items() if "compiled" in k)
        print(f"compile + warm-up: up to {slowest[0]:.0f} s per setup ({slowest[1]})")
    return 0
