"""Split the shared training images into training folders and a held-out validation folder.

Hyper-parameters of the shipped models are chosen on images that are neither test images
(Set5/Set14/B100) nor training images: the last 10 DIV2K100LR images and the last 10 BSD200test
images (sorted by name) are held out. The folders are symlinks under ``runs/data/`` (git-ignored).

    python experiments/holdout_split.py [--shared ../shared/data] [--out runs/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELD_OUT = {"DIV2K100LR": 10, "BSD200test": 10}
TRAIN_SETS = ("T91", "BSD200", "BSD200test", "DIV2K100LR", "RealSR16")


def link_all(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = folder / f.name
        if not target.exists():
            target.symlink_to(f.resolve())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default="../shared/data")
    p.add_argument("--out", default="runs/data")
    args = p.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    for name in TRAIN_SETS:
        files = sorted(f for f in (shared / name / "HR").iterdir() if f.is_file())
        keep = len(files) - HELD_OUT.get(name, 0)
        link_all(files[:keep], out / "train" / name / "HR")
        if keep < len(files):
            link_all(files[keep:], out / "holdout" / "HR")
    print(f"training folders in {out / 'train'}; held-out validation images in {out / 'holdout' / 'HR'}")


if __name__ == "__main__":
    main()
