"""``repsr ntire MODEL --data DIR...``: PSNR of a model next to MATLAB and PyTorch bicubic (the Bicubic++ table).

Scores on clean LR (the set's MATLAB bicubic files) and on NTIRE 2023 LR (Pillow bicubic + JPEG 90) by
default; ``--ms`` adds the challenge score against both bicubic kernels on NTIRE LR. The scale is the
model's own. A Markdown table goes to stdout, the challenge scores to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repsr.errors import UserError
from repsr.evaluate import pixel_upscaler
from repsr.inference import as_upscaler, load_runner
from repsr.ntire import Upscale, challenge_score, matlab_bicubic_up, score_methods, torch_bicubic

METHODS = ("model", "matlab", "torch")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ntire", help="PSNR of a model next to MATLAB and PyTorch bicubic, clean and NTIRE LR",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="weights file, .onnx file or shipped model name")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="dataset folders")
    p.add_argument("--bgr", action="store_true", help="weights expect BGR input (the official Bicubic++)")
    p.add_argument("--degradation", nargs="+", default=["bicubic", "ntire"], choices=["bicubic", "ntire"])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="what to score (gains need matlab and torch)")
    p.add_argument("--ms", type=float, default=None, help="runtime (ms) to compute the challenge score with")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.ms is not None and not args.ms > 0:
        raise UserError(f"--ms must be a positive number of milliseconds, got {args.ms}")
    model = as_upscaler(load_runner(args.model, bgr=True if args.bgr else None))
    scale = model.scale
    network = pixel_upscaler(model)
    every: dict[str, Upscale] = {"model": lambda lr, _scale: network(lr), "matlab": matlab_bicubic_up,
                                 "torch": torch_bicubic}
    methods = {name: every[name] for name in args.methods}
    print("| set | LR | method | PSNR Y (crop s) | PSNR RGB (no crop) | gain RGB vs matlab / torch |")
    print("|---|---|---|---|---|---|")
    for folder in args.data:
        for kind in args.degradation:
            res = score_methods(methods, folder, scale, kind)
            for name, r in res.items():
                gain = "-" if len(res) < 3 else \
                    f"{r['rgb'] - res['matlab']['rgb']:+.3f} / {r['rgb'] - res['torch']['rgb']:+.3f}"
                print(f"| {Path(folder).name} x{scale} | {kind} | {name} | {r['y']:.3f} | {r['rgb']:.3f} | {gain} |")
            if args.ms is not None and kind == "ntire" and len(res) == 3:
                for ref in ("matlab", "torch"):
                    print(challenge_score(res["model"]["rgb"], res[ref]["rgb"], args.ms, ref), file=sys.stderr)
    return 0
