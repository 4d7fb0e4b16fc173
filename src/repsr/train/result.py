"""What a training run hands back to its caller, so that nobody reads a Trainer's attributes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn


@dataclass(frozen=True)
class TrainResult:
    """What :meth:`Trainer.run` hands back: where the run wrote, how far it got, and its nets.

    ``start`` is the iteration this call began at (> 0 when resumed), so ``iteration - start``
    steps took ``step_seconds`` computing and ``wait_seconds`` waiting for data. ``model`` is the
    training graph; ``eval_model`` what is validated and shipped (the EMA copy when EMA is on).
    ``state`` is :meth:`Trainer.state_dict` at the end: what a checkpoint then would hold.
    """

    output: Path
    iteration: int
    start: int
    step_seconds: float
    wait_seconds: float
    switched: bool
    best: dict[str, float]
    model: nn.Module
    eval_model: nn.Module
    state: dict[str, Any]

    @property
    def wall_ms_per_iter(self) -> float:
        """Milliseconds per iteration of this call, data wait included (validation and saving excluded)."""
        return 1000 * (self.step_seconds + self.wait_seconds) / max(1, self.iteration - self.start)
