"""Fine-tuning for the pruning and bias-removal stages of Bicubic++, as ordinary Trainer runs.

Between pruning rounds the net changes shape, so every fine-tune is a short :mod:`repsr.train`
run of its own: the run's ``model`` section is the incoming net's config, and ``train.init_weights``
the net's weights, written into the run's folder (so each run folder says where it started).
All runs share one :class:`~repsr.train.config.TrainConfig` (``repsr prune --finetune-config``
plus overrides, or :data:`BICUBIC_PP_RECIPE`) and one set of decoded training images: the images
are read and degraded once, not once per round.

Layout under the config's ``output``: ``steps/NN-<what>/`` for the short runs (rounds, bias
removal), and the final full-length run (``--finetune-config``) in ``output`` itself.

Resuming (``repsr prune --resume``) recomputes the pruning, which is deterministic given the same
fine-tuned nets: every run whose folder holds a checkpoint continues from it (a finished run ends
with one, so it is reused as it is), and runs that never started start. A killed stage therefore
loses at most the checkpoint interval of the run it was in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

from torch import nn

from repsr.data.images import Pair
from repsr.data.patches import load_pairs
from repsr.models import model_config
from repsr.train.checkpoint import find_checkpoint
from repsr.train.config import TrainConfig
from repsr.train.loop import preflight, train
from repsr.weights import save_model

M = TypeVar("M", bound=nn.Module)

# Bicubic++'s own fine-tuning recipe (MSE, Adam (0.9, 0.999), linearly decayed rate, no BN, NTIRE LR),
# the base of every fine-tune when no --finetune-config is given (typed values of dotted config keys, as
# repsr.train.config.load_train_config takes them); `--lr X` also sets optim.min_lr to X / 10.
BICUBIC_PP_RECIPE: dict[str, object] = {
    "optim.loss": "mse", "optim.betas": [0.9, 0.999], "optim.schedule": "linear", "optim.min_lr": 1.0e-5,
    "train.lr": 1.0e-4, "train.batch_size": 16, "train.patch_size": 48, "train.bn_switch": None, "train.val_every": 0,
    "train.ckpt_every": 0, "train.amp": False, "data.degradation": "ntire"}


class Finetuner:
    """Runs ``config`` from a given net's weights; callable as ``tuner(model) -> model`` for each pruning round."""

    def __init__(self, config: TrainConfig, round_iters: int = 0, resume: bool = False) -> None:
        self.config, self.round_iters, self.resume = config, round_iters, resume
        self.steps = 0
        self._pairs: list[Pair] | None = None

    def prepare(self) -> None:
        """Read the training images and check the config against the disk now, before pruning costs minutes:
        a folder without images or a missing validation set is one line at start, not after the rounds."""
        preflight(self.config, has_pairs=True)
        self._training_pairs(self.config)

    def __call__(self, model: M) -> M:
        """One pruning round's fine-tune: ``round_iters`` iterations (the net unchanged when 0)."""
        return self.step(model, self.round_iters, "round")

    def step(self, model: M, iters: int, what: str) -> M:
        """A short run of ``iters`` iterations in ``output/steps/NN-what``, without validation."""
        if iters <= 0:
            return model
        self.steps += 1
        output = Path(self.config.output) / "steps" / f"{self.steps:02d}-{what}"
        config = dataclasses.replace(self.config, data=dataclasses.replace(self.config.data, val=[]),
                                     train=dataclasses.replace(self.config.train, iters=iters),
                                     seed=self.config.seed + self.steps)
        return self._run(model, config, output)

    def final(self, model: M) -> M:
        """The full-length run of the config (its validation included), in ``output`` itself."""
        return self._run(model, self.config, Path(self.config.output))

    def _run(self, model: M, config: TrainConfig, output: Path) -> M:
        init = output / "init.safetensors"
        save_model(model, init)
        config = dataclasses.replace(config, model=model_config(model), output=str(output),
                                     train=dataclasses.replace(config.train, init_weights=str(init)))
        resume = self.resume and find_checkpoint(output) is not None
        result = train(config, resume=resume, pairs=self._training_pairs(config))
        device = next(model.parameters()).device
        trained = result.eval_model.to(device).train(model.training)
        if not isinstance(trained, type(model)):  # the run rebuilt the net from its config: the same class
            raise TypeError(f"fine-tuning a {type(model).__name__} returned a {type(trained).__name__}")
        return trained

    def _training_pairs(self, config: TrainConfig) -> list[Pair]:
        if self._pairs is None:
            c = config
            self._pairs = load_pairs(c.data.train, c.model.scale, c.train.patch_size, c.data.degradation,
                                     c.data.jpeg_quality)
        return self._pairs


__all__ = ["BICUBIC_PP_RECIPE", "Finetuner"]
