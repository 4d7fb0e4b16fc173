"""Global structured pruning of Bicubic++ by measured validation PSNR (stage 2 of its pipeline).

Each round prices *every* remaining prunable channel of *every* group by the validation PSNR lost
when it alone is removed (masked, which is exact removal), removes the cheapest -- globally, so
the net itself decides whether the residual stream or conv1 gives way -- then fine-tunes. Weight
and gradient norms are not used: the paper chose channels by the PSNR they cost, and so do we.

``per_round`` channels may go in one round to save time (one costing pass per round): they are the
individually cheapest, which ignores interactions between them. ``per_round=1`` is the exact
greedy search; the cost of a full pass is ``widths`` forward passes of the validation batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from repsr.models.bicubic_pp import BicubicPP
from repsr.prune.channels import GROUPS, ChannelGroup, channel_masked, group_width, remove_channels, widths
from repsr.prune.valset import ValBatch, batch_psnr

Finetune = Callable[[BicubicPP], BicubicPP]


@dataclass
class PruneRound:
    """What one round did: the removed ``(group, channel, cost dB)`` and PSNR before/after."""

    removed: list[tuple[str, int, float]]
    widths: dict[str, int]
    psnr_pruned: float
    psnr_finetuned: float


@dataclass
class PruneHistory:
    """The starting PSNR and every round, for the log and the saved metadata."""

    psnr_start: float
    rounds: list[PruneRound] = field(default_factory=list)


def channel_costs(model: BicubicPP, val: ValBatch, group: ChannelGroup, base: float) -> list[float]:
    """PSNR lost (dB, may be negative) by removing each channel of ``group`` alone."""
    costs = []
    for k in range(group_width(model, group)):
        with channel_masked(model, group, k):
            costs.append(base - batch_psnr(model, val))
    return costs


def cheapest(model: BicubicPP, val: ValBatch, targets: dict[str, int], count: int) -> list[tuple[str, int, float]]:
    """The ``count`` cheapest ``(group, channel, cost)`` over all groups still above their target."""
    base = batch_psnr(model, val)
    candidates: list[tuple[float, str, int]] = []
    room = {g.name: group_width(model, g) - targets[g.name] for g in GROUPS}
    for group in GROUPS:
        if room[group.name] > 0:
            candidates += [(c, group.name, k) for k, c in enumerate(channel_costs(model, val, group, base))]
    chosen: list[tuple[str, int, float]] = []
    for cost, name, k in sorted(candidates):
        if len(chosen) < count and room[name] > 0:
            chosen.append((name, k, cost))
            room[name] -= 1
    return chosen


def prune_round(model: BicubicPP, val: ValBatch, targets: dict[str, int],
                count: int) -> tuple[BicubicPP, list[tuple[str, int, float]]]:
    """Remove the ``count`` globally cheapest channels; returns the new dense net and what went."""
    chosen = cheapest(model, val, targets, count)
    for group in GROUPS:
        indices = [k for name, k, _ in chosen if name == group.name]
        if indices:
            model = remove_channels(model, group, indices)
    return model, chosen


def check_targets(model: BicubicPP, targets: dict[str, int]) -> None:
    """Raise ValueError for a target width outside 1..the net's width (before any work is done)."""
    for name, target in targets.items():
        if not 1 <= target <= widths(model)[name]:
            raise ValueError(f"target width {target} for {name} is outside 1..{widths(model)[name]}")


def global_prune(model: BicubicPP, val: ValBatch, targets: dict[str, int], per_round: int = 1,
                 finetune: Finetune | None = None,
                 log: Callable[[str], None] = print) -> tuple[BicubicPP, PruneHistory]:
    """Prune ``model`` round by round until every group is at its target width.

    ``targets`` maps group name (``residual``, ``mid``) to the final width. After each round the
    net is a valid dense BicubicPP; ``finetune`` (if given) trains it a little before the next.
    """
    if per_round < 1:
        raise ValueError("per_round must be >= 1")
    check_targets(model, targets)
    history = PruneHistory(batch_psnr(model, val))
    log(f"prune: start widths {widths(model)}, val PSNR {history.psnr_start:.4f} dB")
    while any(widths(model)[name] > target for name, target in targets.items()):
        model, removed = prune_round(model, val, targets, per_round)
        pruned = batch_psnr(model, val)
        if finetune is not None:
            model = finetune(model)
        tuned = batch_psnr(model, val)
        history.rounds.append(PruneRound(removed, widths(model), pruned, tuned))
        gone = ", ".join(f"{n}[{k}] {c:+.4f}" for n, k, c in removed)
        log(f"prune: round {len(history.rounds)}: removed {gone} dB -> widths {widths(model)}, "
            f"val PSNR {pruned:.4f} dB, after fine-tune {tuned:.4f} dB")
    return model, history


__all__ = ["PruneHistory", "PruneRound", "channel_costs", "cheapest", "global_prune", "prune_round"]
