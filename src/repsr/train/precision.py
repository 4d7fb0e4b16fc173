"""Which mixed precision a run uses: ``train.amp: auto`` means bf16 wherever the hardware does it natively.

bf16 autocast changes the forward's rounding, not what is learned (measured: fp32 and bf16 runs of
the same config and seed end within 0.03 dB, docs/training.md), and CPUs with AVX512-BF16 or AMX
multiply bf16 matrices several times faster than fp32. Without native support bf16 is emulated
and slower, so ``auto`` falls back to float32 there.
"""

from __future__ import annotations

import torch

from repsr.cpu import has_native_bf16


def resolve_amp(amp: str | bool, device: torch.device) -> str | bool:
    """``train.amp`` as it will run on ``device``: ``"bf16"``, ``"fp16"`` or ``False`` (float32)."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else False
    return "bf16" if device.type == "cpu" and has_native_bf16() else False
