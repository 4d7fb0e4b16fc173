"""DistributedDataParallel plumbing for ``torchrun --nproc_per_node N -m repsr train CONFIG``.

torchrun sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; we detect them, pick NCCL on CUDA and gloo on
CPU, and give every rank its device. Logging and checkpoints happen on rank 0 only; data sharding
is done by :class:`repsr.data.patches.PatchBatches` (rank slice of each global batch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def detect() -> DistInfo:
    """Rank/world from torchrun's environment variables (a single process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(requested: str, info: DistInfo) -> torch.device:
    """``auto`` -> this rank's GPU when CUDA is available, else CPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            from repsr.errors import UserError

            raise UserError(f"train.device is '{requested}' but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA, gloo otherwise) when running under torchrun."""
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """The module to train: DDP around ``model`` under torchrun, ``model`` itself otherwise."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def mean_across_ranks(value: float, info: DistInfo, device: torch.device) -> float:
    """Average a scalar (e.g. the loss for logging) over ranks."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def shutdown(info: DistInfo) -> None:
    """Leave the process group together: rank 0 writes the final files while the others wait.

    Without the barrier a rank that finished early can tear down its gloo sockets while rank 0 is still
    inside the group (the suspected cause of an intermittent non-zero exit of a two-rank run).
    """
    barrier(info)
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
