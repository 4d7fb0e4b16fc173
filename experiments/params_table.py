"""Print training-time and merged parameter counts for every block family and size preset.

    python experiments/params_table.py [--scale 4]

Counts are exact (``numel`` of every parameter; BN running statistics are buffers, not
parameters). The merged count is the same for every family: they all become one 3x3 conv.
"""

from __future__ import annotations

import argparse

import repsr
from repsr.models import FAMILIES, PRESETS


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=4)
    args = parser.parse_args()
    archs = sorted(name for name, family in FAMILIES.items() if family.block is not None)
    print(f"| preset (x{args.scale}) | merged | " + " | ".join(f"{a} (train)" for a in archs) + " |")
    print("|" + "---|" * (len(archs) + 2))
    for preset, (blocks, channels) in PRESETS.items():
        cells = []
        merged = None
        for arch in archs:
            model = repsr.create_model(arch, scale=args.scale, blocks=blocks, channels=channels)
            merged = merged or count(repsr.reparameterize(model))
            cells.append(f"{count(model):,}")
        print(f"| {preset} | {merged:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
