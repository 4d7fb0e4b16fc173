"""Which mixed precision a run uses: ``train.amp: auto`` means bf16 wherever the hardware does it natively.

bf16 autocast changes the forward's rounding, not what is learned (measured: fp32 and bf16 runs of
the same config and seed end within 0.03 dB, docs/training.md), and CPUs with AVX512-BF16 or AMX
multiply bf16 matrices several times faster than fp32. Without native support bf16 is emulated
and slower, so ``auto`` falls back to float32 there.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises AVX512-BF16 or AMX-BF16 (Linux ``/proc/cpuinfo``; False elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_CPU_FLAGS)


def resolve_amp(amp: str | bool, device: torch.device) -> str | bool:
    """``train.amp`` as it will run on ``device``: ``"bf16"``, ``"fp16"`` or ``False`` (float32)."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else False
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else False
