"""What a run tells the user: a progress bar (or plain lines), TensorBoard scalars, a metrics log.

A rich progress bar with it/s, loss and ETA goes to stderr when it is a terminal; under a job
scheduler or ``| tee`` (not a TTY) the same facts are printed as plain lines every ``log_every``
iterations, because bar redraws make unreadable logs. Only rank 0 reports anything.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Reporter:
    """Progress display, TensorBoard writer and ``metrics.jsonl`` of one run (inactive off rank 0)."""

    def __init__(self, output: Path, total: int, start: int, log_every: int, active: bool = True,
                 tensorboard: bool = True) -> None:
        self.active, self.total, self.start, self.log_every = active, total, start, log_every
        self.output = output
        self._t0 = time.perf_counter()
        self._bar = self._task = self._writer = None
        if not active:
            return
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(output / "tb"), purge_step=start if start else None)
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]:.2f} it/s loss {task.fields[loss]:.4f}"),
                                 TimeRemainingColumn(), transient=False)
            self._task = self._bar.add_task("train", total=total, completed=start, rate=0.0, loss=float("nan"))
            self._bar.start()

    def rate(self, iteration: int) -> float:
        done = iteration - self.start
        return done / max(time.perf_counter() - self._t0, 1e-9)

    def step(self, iteration: int, loss: float, lr: float) -> None:
        """Called after each iteration (1-based count of finished steps) with the batch loss."""
        if not self.active:
            return
        rate = self.rate(iteration)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=iteration, rate=rate, loss=loss)
        if iteration % self.log_every == 0 or iteration == self.total:
            self.scalars(iteration, {"train/loss": loss, "train/lr": lr, "train/it_per_s": rate})
            if self._bar is None:
                eta = (self.total - iteration) / max(rate, 1e-9)
                self.line(f"iter {iteration}/{self.total}  loss {loss:.5f}  lr {lr:.3g}  {rate:.2f} it/s  "
                          f"eta {_format_eta(eta)}")

    def scalars(self, iteration: int, values: dict[str, float]) -> None:
        if self.active and self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, iteration)

    def record(self, iteration: int, kind: str, values: dict[str, Any]) -> None:
        """Append one JSON line to ``metrics.jsonl`` (validation results, the BN switch)."""
        if self.active:
            with open(self.output / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"iter": iteration, "kind": kind, **values}) + "\n")

    def line(self, text: str) -> None:
        if not self.active:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._writer is not None:
            self._writer.close()
