"""What this CPU can do natively, read once from ``/proc/cpuinfo``: the facts that decide precisions.

Two CPU classes appear on the project's machines (and on users'): x86 with AVX512-BF16/VNNI/AMX, and
x86 with AVX2 only. Both bf16 and INT8 depend on the class, in opposite ways: bf16 without native
support is emulated (slower than fp32, so ``auto`` never picks it), and INT8 convolutions without
VNNI sum pairs of u8 x s8 products in int16 (``vpmaddubsw``), which *saturates* with full-range 8-bit
weights and activations (measured: a 1.8 dB Set5 drop on AVX2 for a file that lost 0.07 dB on VNNI,
docs/deploy.md). ARM CPUs sum int8 products in int32 (``sdot``/``udot`` or widening multiplies).
"""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Instructions that sum u8 x s8 products straight into int32 (no int16 intermediate to saturate).
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``); empty where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def has_native_bf16() -> bool:
    """True when the CPU advertises AVX512-BF16 or AMX-BF16."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def sums_int8_exactly() -> bool:
    """True unless this is an x86 CPU without VNNI/AMX, whose INT8 kernels saturate full-range 8-bit weights."""
    return not is_x86() or any(flag in cpu_flags() for flag in INT8_DOT_FLAGS)


def describe() -> str:
    """One line for benchmark tables: the model name and the precision-relevant flags."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    tags = [t for t, ok in (("bf16", has_native_bf16()), ("VNNI", sums_int8_exactly() and is_x86()),
                            ("AVX2", "avx2" in cpu_flags())) if ok]
    return f"{name} ({', '.join(tags) or 'no AVX2/VNNI/bf16'})"


__all__ = ["cpu_flags", "describe", "has_native_bf16", "is_x86", "sums_int8_exactly"]
