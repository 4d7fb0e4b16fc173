"""Validation during training: the training graph *and* its merged form, so the merge is checked continuously.

Both are scored on the same sets (PSNR/SSIM on Y, the field's convention) by the shared evaluation
code. In eval mode (or after the BN switch) the two are the same function, so their scores must
agree; a gap beyond :data:`MERGE_TOLERANCE_DB` means a merge bug or BN in the wrong mode, and is
reported loudly rather than discovered after shipping.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import torch
from torch import nn

from repsr.data.datasets import EvalDataset, find_dataset
from repsr.evaluate import evaluate
from repsr.reparam.base import branch_forward
from repsr.reparam.convert import reparameterize

log = logging.getLogger(__name__)

# Largest PSNR gap (dB) between the training graph and the merged net that float32 rounding
# explains (outputs are quantised to uint8 first, so tiny differences flip a few pixels).
MERGE_TOLERANCE_DB = 0.02


def load_val_sets(sets: list[str], scale: int, max_images: int | None = None) -> list[EvalDataset]:
    """Validation sets, decoded once and cached in memory (validation repeats every ``val_every``)."""
    built = [find_dataset(s, scale, cache=True) for s in sets]
    return [dataclasses.replace(d, pairs=d.pairs[:max_images]) if max_images else d for d in built]


def score_sets(model: nn.Module, sets: list[EvalDataset], scale: int) -> dict[str, dict[str, float]]:
    """``{set name: {"psnr": dB, "ssim": ...}}`` of ``model`` (Y channel, the field's convention)."""
    results = evaluate(model, sets, scale, progress=False)
    return {name: {"psnr": r.psnr, "ssim": r.ssim} for name, r in results.items()}


def merge_gaps(graph: dict[str, dict[str, float]], merged: dict[str, dict[str, float]]) -> dict[str, float]:
    """PSNR gap per set between training graph and merged net (absolute, dB)."""
    return {name: abs(graph[name]["psnr"] - merged[name]["psnr"]) for name in graph}


@torch.no_grad()
def score_merged(model: nn.Module, sets: list[EvalDataset], scale: int) -> dict[str, dict[str, float]]:
    """Scores of ``model``'s merge alone (no merge check): for a second set of weights, e.g. EMA's live model.

    Merged from eval mode (population BN statistics), as :func:`validate` does; the mode is restored.
    """
    was_training = model.training
    model.eval()
    try:
        return score_sets(reparameterize(model).eval(), sets, scale)
    finally:
        model.train(was_training)


@torch.no_grad()
def validate(model: nn.Module, sets: list[EvalDataset], scale: int) -> dict[str, Any]:
    """Score the training graph (eval mode) and its merge; warn loudly when they disagree.

    Returns ``{"graph": scores, "merged": scores, "gap": per-set dB, "psnr": mean merged PSNR}``.
    The model's train/eval mode is restored; the model itself is never modified.
    """
    was_training = model.training
    model.eval()
    try:
        with branch_forward(model):  # the branches themselves, or the merge check would compare a net to itself
            graph = score_sets(model, sets, scale)
        merged = score_merged(model, sets, scale)
    finally:
        model.train(was_training)
    gaps = merge_gaps(graph, merged)
    for name, gap in gaps.items():
        if not gap <= MERGE_TOLERANCE_DB:  # also catches NaN
            log.warning("!!! MERGE MISMATCH on %s: training graph %.4f dB vs merged %.4f dB (gap %.4f dB > %.3f)",
                        name, graph[name]["psnr"], merged[name]["psnr"], gap, MERGE_TOLERANCE_DB)
    mean = sum(s["psnr"] for s in merged.values()) / max(len(merged), 1) if merged else math.nan
    return {"graph": graph, "merged": merged, "gap": gaps, "psnr": mean}
