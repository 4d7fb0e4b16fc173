"""Data of the issue-28 fine-tune legs: a structure-rich validation split and cleaned training folders.

Why: the shipped nets trail the peer most on structure-rich content (city photos, line art), which the
20 held-out images (half of them q95 JPEG photos) do not show. This script, reading the per-image audit
of experiments/data_audit.py (run it first), writes under ``runs/data/`` (git-ignored, symlinks or
derived PNGs):

* ``structure/HR`` -- the N most edge-rich *clean* training images (not JPEG-sourced, at least
  160x160, at most ``--per-folder`` from one folder, never a held-out or test image). The shipped
  checkpoints saw them in their earlier legs, so this split judges a fine-tune leg only because the
  leg itself never trains on them (they are left out of both folders below).
* ``leg/<set>/HR`` -- the training images as they are, less the held-out and structure images: the
  control leg's data.
* ``leg_clean/<set>/HR`` -- the same images, but every JPEG-sourced one (a JPEG file, or a JPEG grid left
  in the pixels) replaced by its MATLAB-bicubic half-size copy: antialiased halving removes the 8x8
  blocks and ringing a net would otherwise learn to reproduce, keeps the image population (the BSD photos
  stay in), and gives sharper detail per pixel.
* ``synthetic/HR`` -- twelve rendered pages of text, line art, hatching, façades, screentone and diagrams
  (repsr.data.synthetic): structure no net here has seen.
* ``downscaled-<F>/HR`` -- with ``--downscaled F``: every ``leg_clean`` image shrunk by F (MATLAB bicubic,
  antialiased) where its short side stays >= 96 px: the multi-scale augmentation of DIV2K training, which
  packs more edges and lines into each patch (denser structure, as in line art and city photos) and
  averages away sensor noise and any JPEG residue.
* ``pages-<N>/HR`` -- with ``--train-pages N``: N more pages of every kind, from seeds 1000 on (disjoint
  from the validation pages' seeds), the sharp-detail data a leg may add to its training folders (once a
  leg trains on pages, ``synthetic`` is in its distribution and overstates what it gains on real drawings).

    python experiments/leg_data.py [--audit runs/data_audit.csv] [--out runs/data] [--structure 16]
                                   [--train-pages N] [--downscaled F]
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np
from holdout_split import TRAIN_SETS, link_all  # this folder is on sys.path when the script runs
from PIL import Image

from repsr.data.imresize import imresize
from repsr.data.synthetic import write_set
from repsr.imageio import read_uint8

TRAIN_PAGE_SEED = 1000  # rendered training pages start here; the validation pages use seeds 0, 1


def held_out(out: Path) -> set[str]:
    """Real paths of the images experiments/holdout_split.py put in ``holdout/HR``."""
    folder = out / "holdout" / "HR"
    return {str(p.resolve()) for p in folder.iterdir()} if folder.is_dir() else set()


def pick_structure(rows: list[dict[str, str]], count: int, per_folder: int) -> list[dict[str, str]]:
    """The ``count`` most edge-rich clean images, at most ``per_folder`` from one folder."""
    clean = [r for r in rows if r["jpeg_sourced"] == "False" and int(r["width"]) >= 160 and int(r["height"]) >= 160]
    taken: list[dict[str, str]] = []
    per: Counter[str] = Counter()
    for r in sorted(clean, key=lambda r: -float(r["edge_density"])):
        if per[r["folder"]] < per_folder:
            taken.append(r)
            per[r["folder"]] += 1
        if len(taken) == count:
            break
    return taken


def shrink(src: Path, dst: Path, factor: float = 0.5, min_side: int = 0) -> bool:
    """Write the MATLAB-bicubic (antialiased) copy of ``src`` shrunk by ``factor`` as PNG.

    Returns False (and writes nothing) when the copy's short side would fall below ``min_side``.
    """
    dst = dst.with_suffix(".png")
    if dst.exists():
        return True
    image = read_uint8(src, rgb=True)
    if min(image.shape[:2]) * factor < min_side:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(imresize(image, factor))).save(dst)
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audit", default="runs/data_audit.csv")
    p.add_argument("--out", default="runs/data")
    p.add_argument("--structure", type=int, default=16, help="images in the structure-rich split")
    p.add_argument("--per-folder", type=int, default=6)
    p.add_argument("--train-pages", type=int, default=0, help="rendered training pages per kind (0: none)")
    p.add_argument("--downscaled", type=float, default=0.0,
                   help="also write the leg_clean images shrunk by this factor (0: none)")
    args = p.parse_args()
    if args.downscaled and not 0 < args.downscaled < 1:  # before any folder is written
        raise SystemExit(f"--downscaled {args.downscaled}: a factor between 0 and 1")
    out = Path(args.out)
    excluded = held_out(out)
    if not excluded:
        raise SystemExit(f"{out / 'holdout' / 'HR'}: none; run experiments/holdout_split.py first")
    with open(args.audit, newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["folder"] in TRAIN_SETS and str(Path(r["path"]).resolve()) not in excluded]
    structure = pick_structure(rows, args.structure, args.per_folder)
    for r in structure:
        link_all([Path(r["path"])], out / "structure" / "HR")
    names = {r["path"] for r in structure}
    halved = 0
    for r in rows:
        if r["path"] in names:
            continue
        src = Path(r["path"])
        link_all([src], out / "leg" / r["folder"] / "HR")
        if r["jpeg_sourced"] == "True":
            shrink(src, out / "leg_clean" / r["folder"] / "HR" / src.name)
            halved += 1
        else:
            link_all([src], out / "leg_clean" / r["folder"] / "HR")
    if args.downscaled:
        folder = out / f"downscaled-{args.downscaled:g}" / "HR"
        written = sum(shrink(src, folder / f"{src.parent.parent.name}_{src.stem}", args.downscaled, min_side=96)
                      for src in sorted((out / "leg_clean").glob("*/HR/*")))
        print(f"downscaled x{args.downscaled:g}: {written} images in {folder}")
    synthetic = write_set(out / "synthetic")
    print(f"synthetic pages: {len(synthetic)} in {out / 'synthetic' / 'HR'} (validation)")
    if args.train_pages:
        pages = write_set(out / f"pages-{args.train_pages}", per_kind=args.train_pages, first_seed=TRAIN_PAGE_SEED)
        print(f"training pages: {len(pages)} in {out / f'pages-{args.train_pages}' / 'HR'}")
    print(f"structure split: {len(structure)} images in {out / 'structure' / 'HR'} "
          f"({dict(Counter(r['folder'] for r in structure))}); training images: {len(rows) - len(structure)} in "
          f"{out / 'leg'}, of which {halved} JPEG-sourced halved in {out / 'leg_clean'}")


if __name__ == "__main__":
    main()
