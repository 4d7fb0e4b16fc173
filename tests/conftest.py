"""Shared test fixtures: where the benchmark images live, and deterministic torch settings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REPSR_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
PEERS = SHARED / "peers"

# One thread: the suite's tensors are tiny, and on a busy 2-core machine OpenMP threads that
# spin-wait for a core held by another process make a step 100x slower (measured: 16 ms vs 3.4 s).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the same for the CLI subprocesses the tests start
# OpenVINO's converted-IR cache: one per test session, never the user's ~/.cache
os.environ.setdefault("REPSR_CACHE", tempfile.mkdtemp(prefix="repsr-test-cache-"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (Set5, Set14, B100, T91, BSD200, matlab_imresize); skips where absent."""
    if not (DATA / "Set5" / "HR").is_dir():
        pytest.skip(f"benchmark images not found at {DATA} (set REPSR_SHARED to the shared/ folder)")
    return DATA


@pytest.fixture(scope="session")
def peers_dir() -> Path:
    """``../shared/peers`` (third-party weights for evaluation only); skips where absent."""
    if not PEERS.is_dir():
        pytest.skip(f"peer weights not found at {PEERS}")
    return PEERS
