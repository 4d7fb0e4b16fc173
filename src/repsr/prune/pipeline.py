"""Bicubic++'s pruning stages in one call: global pruning (stage 2), bias removal (stage 3), a final fine-tune.

``repsr prune`` parses its flags into a :class:`PrunePlan` and a :class:`~repsr.prune.finetune.Finetuner`,
calls :func:`prune_stages` and writes the net with the returned :class:`PruneRecord` as its ``prune``
metadata: the validation PSNR after each stage that ran, so a pruned file says what each step cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from repsr.models.bicubic_pp import BicubicPP
from repsr.prune.channels import drop_biases
from repsr.prune.finetune import Finetuner
from repsr.prune.search import global_prune
from repsr.prune.valset import ValBatch, batch_psnr


@dataclass(frozen=True)
class PrunePlan:
    """What to do: final widths, channels per costing round, and the stages after pruning."""

    residual: int  # final width of the residual stream (conv0/conv2 outputs)
    mid: int  # final width of conv1's outputs
    per_round: int = 2
    drop_bias: bool = False  # stage 3: remove every bias
    bias_finetune_iters: int = 0  # fine-tuning iterations after removing the biases
    final_finetune: str | None = None  # the fine-tune config (its name, for the log): its full run comes last

    @property
    def targets(self) -> dict[str, int]:
        """Final width of each prunable group, by group name."""
        return {"residual": self.residual, "mid": self.mid}


@dataclass
class PruneRecord:
    """Validation PSNR (dB) after each stage; None for a stage that did not run."""

    psnr_start: float
    psnr_pruned: float
    psnr_bias_dropped: float | None = None
    psnr_bias_finetuned: float | None = None
    psnr_trainer_finetuned: float | None = None

    def to_json(self) -> str:
        """The stages that ran, as the written file's ``prune`` metadata."""
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})


def prune_stages(model: BicubicPP, val: ValBatch, plan: PrunePlan, tuner: Finetuner | None = None,
                 log: Callable[[str], None] = print) -> tuple[BicubicPP, PruneRecord]:
    """Prune ``model`` to the plan's widths (fine-tuning ``tuner.round_iters`` after each round), then run the
    plan's later stages; returns the final net and the record. A target outside the net's widths is a ValueError."""
    rounds = tuner if tuner is not None and tuner.round_iters > 0 else None
    model, history = global_prune(model, val, plan.targets, plan.per_round, rounds, log)
    record = PruneRecord(history.psnr_start, batch_psnr(model, val))
    if plan.drop_bias:
        model = drop_biases(model)
        record.psnr_bias_dropped = batch_psnr(model, val)
        log(f"drop-bias: val PSNR {record.psnr_bias_dropped:.4f} dB")
        if tuner is not None and plan.bias_finetune_iters > 0:
            model = tuner.step(model, plan.bias_finetune_iters, "bias")
            record.psnr_bias_finetuned = batch_psnr(model, val)
            log(f"drop-bias: after {plan.bias_finetune_iters} iterations {record.psnr_bias_finetuned:.4f} dB")
    if tuner is not None and plan.final_finetune is not None:
        model = tuner.final(model)
        record.psnr_trainer_finetuned = batch_psnr(model, val)
        log(f"fine-tuned with {plan.final_finetune}: val PSNR {record.psnr_trainer_finetuned:.4f} dB")
    return model, record


__all__ = ["PrunePlan", "PruneRecord", "prune_stages"]
