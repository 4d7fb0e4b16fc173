"""Where a set's HR images are, and the one decoded (HR, LR) pair that training and evaluation share.

One listing rule for every consumer (training patches, evaluation sets, the pruning validation
batch): a set folder holds its HR images in ``HR/`` (EDSR), ``GT/`` (BasicSR), ``hr/`` or ``gt/``,
or directly. Sorted by name, so a set always lists (and samples) in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repsr.errors import UserError
from repsr.imageio import IMAGE_SUFFIXES

HR_DIRS = ("HR", "GT", "hr", "gt")


@dataclass(frozen=True)
class Pair:
    """A decoded image pair, uint8 (H, W) gray or (H, W, 3) RGB; ``hr`` is exactly ``scale`` times ``lr``."""

    hr: np.ndarray
    lr: np.ndarray
    name: str


def hr_folder(root: Path) -> Path:
    """The folder of ``root``'s HR images: its first ``HR_DIRS`` subfolder, else ``root`` itself."""
    for name in HR_DIRS:
        if (root / name).is_dir():
            return root / name
    return root


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_hr_images(folders: list[str] | list[Path]) -> list[Path]:
    """Every HR image of the given set folders (see :func:`hr_folder`), folder after folder."""
    files: list[Path] = []
    for root in map(Path, folders):
        folder = hr_folder(root)
        if not folder.is_dir():
            raise UserError(f"{folder}: image folder not found")
        found = list_images(folder)
        if not found:
            raise UserError(f"{folder}: no images inside ({', '.join(IMAGE_SUFFIXES)})")
        files += found
    return files


__all__ = ["HR_DIRS", "Pair", "hr_folder", "list_hr_images", "list_images"]
