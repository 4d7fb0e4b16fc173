"""Audit the training images (issue 28): which folders are JPEG-sourced, noisy, edge-rich.

Prints one row per folder (images, megapixels, share of pixels JPEG-sourced, medians) and writes
every image's measurements to a CSV, so a training leg can choose its data from evidence. The
measurements are repsr.data.audit's (docstring there says what each means and where it fails).

    python experiments/data_audit.py [--shared ../shared/data] [--csv runs/data_audit.csv]
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import asdict
from pathlib import Path

from repsr.data.audit import audit_folder

FOLDERS = ("T91", "BSD200", "BSD200test", "DIV2K100LR", "RealSR16", "Set5", "Set14", "B100")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default="../shared/data")
    p.add_argument("--csv", default="runs/data_audit.csv")
    args = p.parse_args()
    rows = []
    print(f"{'folder':<12}{'images':>7}{'MP':>7}{'JPEG share':>11}{'JPEG files':>11}{'blockiness':>11}"
          f"{'noise':>7}{'edges':>7}")
    for name in FOLDERS:
        audit = audit_folder(Path(args.shared) / name)
        files = sum(a.jpeg_quality is not None for a in audit.images)
        print(f"{name:<12}{len(audit.images):>7}{audit.megapixels:>7.1f}{100 * audit.jpeg_share:>10.0f}%"
              f"{files:>11}{audit.median('blockiness'):>11.3f}{audit.median('noise_sigma'):>7.2f}"
              f"{audit.median('edge_density'):>7.3f}")
        rows += [{"folder": name, **asdict(a), "jpeg_sourced": a.jpeg_sourced} for a in audit.images]
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"per image: {args.csv} (medians are per image; JPEG share is of pixels)")


if __name__ == "__main__":
    main()
