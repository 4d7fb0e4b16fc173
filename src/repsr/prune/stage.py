"""Fine-tuning a pruned or bias-free Bicubic++ with ``repsr train``'s own loop and config schema.

The trainer builds its model from the config's ``model`` section and has no "start from these
weights" option; stages 2 and 3 of Bicubic++ must start from the previous stage's weights, whose
shape only the pruning decided. This thin layer, kept outside the trainer, takes a run config
(``configs/bicubic_pp_stage2.yaml`` / ``stage3.yaml``), replaces its ``model`` section with the
incoming net's config, copies the weights in before the first step (the optimizer holds the same
parameter objects, so it sees them) and runs the loop: validation, logging and outputs as usual.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from repsr.errors import ReprError


def finetune_with_trainer(model: nn.Module, config_path: str, overrides: list[str] | None = None) -> nn.Module:
    """Run ``repsr train CONFIG`` starting from ``model``'s weights; returns the trained (eval) net."""
    from repsr.train.config import load_train_config
    from repsr.train.ema import EMA
    from repsr.train.loop import Trainer

    if getattr(model.config, "bgr", False):
        raise ReprError("the trainer feeds RGB patches: fine-tune BGR weights with --finetune-iters instead")
    config = load_train_config(config_path, overrides)
    config = dataclasses.replace(config, model=model.config)
    trainer = Trainer(config)
    trainer.model.load_state_dict(model.state_dict(), strict=True)
    if trainer.ema is not None:
        trainer.ema = EMA(trainer.model, config.train.ema)  # start the average from the loaded weights
    trainer.run()
    return trainer.eval_model().eval()


__all__ = ["finetune_with_trainer"]
