"""The process-wide settings a library call may change, captured and put back: :func:`preserved`.

Why: torch and OpenCV keep their thread counts, grad mode, default dtype, autocast and determinism per process
(or per thread), not per call. A library function that sets one thread to time it, or turns deterministic
algorithms on for a training run, changes its caller's program for good unless it puts the setting back. Every
repsr entry point that changes one of these does so inside ``with preserved():``, and
``tests/test_global_state.py`` calls each public entry point and holds these settings to what they were.

Not covered, on purpose: the global RNGs (building a model draws from them, as any ``nn.Module`` does; a
training run seeds them for itself and :class:`repsr.train.loop.Trainer` gives the caller's streams back);
torch's inter-op threads (settable once per process, before any parallel work, so never changed here); and
ExecuTorch's thread pool (process-wide with no getter: its engine documents that ``threads`` resets it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import torch

AUTOCAST_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class GlobalState:
    """The settings :func:`preserved` restores, as read by torch's and OpenCV's getters."""

    threads: int  # torch intra-op threads
    cv2_threads: int
    grad_enabled: bool
    default_dtype: torch.dtype
    autocast: tuple[tuple[str, bool, torch.dtype], ...]  # (device type, enabled, dtype) per device type
    deterministic: bool
    deterministic_warn_only: bool


def capture() -> GlobalState:
    """The current settings."""
    return GlobalState(
        threads=torch.get_num_threads(), cv2_threads=cv2.getNumThreads(), grad_enabled=torch.is_grad_enabled(),
        default_dtype=torch.get_default_dtype(),
        autocast=tuple((d, torch.is_autocast_enabled(d), torch.get_autocast_dtype(d)) for d in AUTOCAST_DEVICES),
        deterministic=torch.are_deterministic_algorithms_enabled(),
        deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled())


def restore(state: GlobalState) -> None:
    """Put every setting back as ``state`` holds it (a no-op where nothing changed)."""
    if torch.get_num_threads() != state.threads:  # setting it rebuilds OpenMP's pool: skip when unchanged
        torch.set_num_threads(state.threads)
    if cv2.getNumThreads() != state.cv2_threads:
        cv2.setNumThreads(state.cv2_threads)
    torch.set_grad_enabled(state.grad_enabled)
    torch.set_default_dtype(state.default_dtype)
    for device, enabled, dtype in state.autocast:
        torch.set_autocast_enabled(device, enabled)
        torch.set_autocast_dtype(device, dtype)
    torch.use_deterministic_algorithms(state.deterministic, warn_only=state.deterministic_warn_only)


@contextmanager
def preserved() -> Iterator[GlobalState]:
    """Run the block, then restore the settings it found (also when it raises); yields them as found."""
    state = capture()
    try:
        yield state
    finally:
        restore(state)


__all__ = ["GlobalState", "capture", "preserved", "restore"]
