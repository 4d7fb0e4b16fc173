"""Evaluation datasets: HR/LR pairs found in the folder layouts SR people actually have.

``find_dataset(path, scale)`` recognises, in this order:

- a single image file (LR made from it);
- EDSR layout: ``HR/`` + ``LR_bicubic/X{s}/<stem>x{s}.png`` (the shared Set5/Set14/B100);
- DIV2K layout: ``DIV2K_valid_HR/`` + ``DIV2K_valid_LR_bicubic/X{s}/<stem>x{s}.png`` (any ``<p>_HR``
  with a ``<p>_LR_bicubic`` beside it; ``valid`` preferred over ``train``);
- BasicSR paired folders: ``GT/`` + ``LQ/`` (or ``HR/`` + ``LR/``, optionally ``LQ/X{s}``) with the
  same file names (``<stem>x{s}`` also accepted);
- any folder of HR images.

Where no LR file exists, the LR is made on the fly exactly as the benchmark files were
(MATLAB bicubic of ``modcrop(HR, s)``), so a bare HR folder scores the same as its EDSR layout.
Ground truth is HR cropped from the top-left to ``LR size * s``. Images are uint8: 16-bit files are
rounded to 8 bits, alpha is dropped, and grayscale stays single-channel (scored on its gray values).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repsr.data.degrade import matlab_bicubic
from repsr.data.images import HR_DIRS, Pair, hr_folder, list_images
from repsr.errors import ImageError, UserError
from repsr.imageio import IMAGE_SUFFIXES, read_uint8

LR_DIRS = ("LQ", "LR", "lq", "lr")


@dataclass(frozen=True)
class PairFiles:
    """Where one evaluation image is: its HR file and its LR file (``None``: make the LR from the HR)."""

    name: str
    hr_path: Path
    lr_path: Path | None




def _match_channels(lr: np.ndarray, gray: bool) -> np.ndarray:
    if gray and lr.ndim == 3:
        gray_lr: np.ndarray = np.rint(lr.astype(np.float64).mean(axis=2)).astype(np.uint8)
        return gray_lr
    if not gray and lr.ndim == 2:
        return np.repeat(lr[:, :, None], 3, axis=2)
    return lr


@dataclass
class EvalDataset:
    """A named list of HR/LR pairs at one scale; ``cache=True`` keeps decoded samples in memory."""

    name: str
    root: Path
    scale: int
    layout: str
    pairs: list[PairFiles]
    cache: bool = False
    _cached: dict[str, Pair] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, pair: PairFiles) -> Pair:
        """Decode one pair; raises :class:`ImageError` for unreadable or mismatched files."""
        if pair.name in self._cached:
            return self._cached[pair.name]
        hr = read_uint8(pair.hr_path)
        s = self.scale
        if pair.lr_path is None:
            if min(hr.shape[:2]) < s:
                raise ImageError(f"{pair.hr_path}: image {hr.shape[:2]} is smaller than the scale {s}")
            lr = matlab_bicubic(hr, s)
        else:
            lr = _match_channels(read_uint8(pair.lr_path), hr.ndim == 2)
        lh, lw = lr.shape[:2]
        if lh * s > hr.shape[0] or lw * s > hr.shape[1]:
            hr_size = f"{hr.shape[1]}x{hr.shape[0]}"
            raise ImageError(f"{pair.lr_path}: LR {lw}x{lh} times {s} is larger than HR {hr_size}")
        sample = Pair(hr=np.ascontiguousarray(hr[: lh * s, : lw * s]), lr=lr, name=pair.name)
        if self.cache:
            self._cached[pair.name] = sample
        return sample

    def __iter__(self) -> Iterator[Pair]:
        for pair in self.pairs:
            yield self.load(pair)


def _lr_file(lr_dir: Path | None, stem: str, scale: int) -> Path | None:
    """The LR file for ``stem`` (``<stem>x{s}.*`` or ``<stem>.*``), or None when ``lr_dir`` is None."""
    if lr_dir is None:
        return None
    for name in (f"{stem}x{scale}", stem):
        for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
            if (lr_dir / f"{name}{suffix}").is_file():
                return lr_dir / f"{name}{suffix}"
    # A missing LR file is reported for that image when it is loaded, not silently re-made.
    return lr_dir / f"{stem}x{scale}.png"


def _scale_dir(folder: Path, scale: int) -> Path | None:
    for candidate in (folder / f"X{scale}", folder / f"x{scale}"):
        if candidate.is_dir():
            return candidate
    return folder if folder.is_dir() and list_images(folder) else None


def _find_layout(root: Path, scale: int) -> tuple[str, Path, Path | None]:
    """``(layout, hr_dir, lr_dir)`` of a dataset folder."""
    if (root / "HR").is_dir() and (root / "LR_bicubic").is_dir():
        return "edsr", root / "HR", _scale_dir(root / "LR_bicubic", scale)
    div2k = sorted(root.glob("*_HR"), key=lambda p: ("valid" not in p.name, p.name))
    for hr_dir in div2k:
        lr_root = root / f"{hr_dir.name[:-3]}_LR_bicubic"
        if hr_dir.is_dir():
            return "div2k", hr_dir, _scale_dir(lr_root, scale) if lr_root.is_dir() else None
    hr_dir = hr_folder(root)
    if hr_dir != root:
        lr_dirs = [root / n for n in LR_DIRS if (root / n).is_dir()]
        lr_dir = _scale_dir(lr_dirs[0], scale) if lr_dirs else None
        return ("paired" if lr_dir else "folder"), hr_dir, lr_dir
    return "folder", root, None


def _dataset_name(root: Path) -> str:
    """The folder's name; for ``Set5/HR`` (an HR folder given directly) the parent's name."""
    root = root.resolve()
    if root.name in HR_DIRS and root.parent.name:
        return root.parent.name
    return root.name


def find_dataset(path: str | Path, scale: int, *, cache: bool = False) -> EvalDataset:
    """The evaluation dataset at ``path`` (folder or single image) for ``scale``; see the module doc."""
    root = Path(path)
    if root.is_file():
        if root.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{root}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
        return EvalDataset(root.stem, root, scale, "file", [PairFiles(root.stem, root, None)], cache)
    if not root.is_dir():
        raise UserError(f"{root}: no such file or directory")
    layout, hr_dir, lr_dir = _find_layout(root, scale)
    hr_files = list_images(hr_dir)
    if not hr_files:
        raise UserError(f"{hr_dir}: no images found ({', '.join(IMAGE_SUFFIXES)})")
    pairs = [PairFiles(p.stem, p, _lr_file(lr_dir, p.stem, scale)) for p in hr_files]
    return EvalDataset(_dataset_name(root), root, scale, layout, pairs, cache)
