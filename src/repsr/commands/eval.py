"""``repsr eval``: PSNR/SSIM of a model, or of MATLAB bicubic, on benchmark datasets.

Prints a paper-style table on stdout (or, with ``--json``, exactly
``{"<dataset>": {"psnr": float, "ssim": float, "images": int}, ...}``); the progress bar goes to
stderr. Images that cannot be read are skipped and listed as ``warning:`` lines on stderr, and the
command then exits 1 so scripts notice; a dataset with no readable image at all is an error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from repsr.errors import ReprError
from repsr.evaluate import DatasetResult, evaluate

BICUBIC = "bicubic"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="PSNR/SSIM of a model (or MATLAB bicubic) on benchmark sets",
        description="Score a model the way SR papers do: MATLAB-bicubic LR, uint8 SR, Y-channel "
                    "PSNR/SSIM with crop_border = scale.")
    p.add_argument("-m", "--model", required=True, metavar="MODEL",
                   help="'bicubic' (MATLAB bicubic upscale of the LR), a weights file, an .onnx file "
                        "(fp32 or INT8, run by onnxruntime) or a shipped model name")
    p.add_argument("-d", "--data", required=True, nargs="+", metavar="DIR",
                   help="dataset folders (EDSR, DIV2K, GT/LQ or plain HR layout) or single images")
    p.add_argument("-s", "--scale", type=int, default=None,
                   help="upscaling factor (default: the model's; required with bicubic)")
    p.add_argument("--json", action="store_true", help="print {dataset: {psnr, ssim, images}} as JSON")
    p.add_argument("--save", metavar="DIR", type=Path, default=None, help="write SR images to DIR/<dataset>/")
    p.add_argument("--rgb", action="store_true", help="score on RGB instead of the Y channel")
    p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")
    p.add_argument("--bgr", action="store_true", help="the weights expect BGR input (e.g. the official Bicubic++ .pth)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _model_and_scale(args: argparse.Namespace):
    if args.model == BICUBIC:
        if args.scale is None:
            raise ReprError("--scale is required with --model bicubic")
        return None, args.scale
    from repsr.inference import as_upscaler, resolve_device
    from repsr.runner import load_runner

    device = resolve_device(args.device)  # `cuda` without a GPU, or `gpu`: one line, not a traceback
    model = load_runner(args.model, device=device, bgr=True if args.bgr else None)
    scale = args.scale if args.scale is not None else as_upscaler(model)[1]
    return model, scale


def _print_table(results: dict[str, DatasetResult], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("Dataset")
    table.add_column("Images", justify="right")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    for name, r in results.items():
        table.add_row(name, str(len(r.images)), f"{r.psnr:.2f}", f"{r.ssim:.4f}")
    Console(file=sys.stdout).print(table)


def run(args: argparse.Namespace) -> int:
    if args.scale is not None and args.scale < 1:
        raise ReprError(f"--scale must be a positive integer, got {args.scale}")
    model, scale = _model_and_scale(args)
    results = evaluate(model, args.data, scale, save_dir=args.save, progress=not args.quiet,
                       y_channel=not args.rgb)
    skipped = [(name, image, why) for name, r in results.items() for image, why in r.skipped]
    for name, r in results.items():
        if not r.images:
            reason = r.skipped[0][1] if r.skipped else "no images"
            raise ReprError(f"{name}: no image could be evaluated ({reason})")
    if args.json:
        # strict JSON has no Infinity/NaN: a PSNR of identical images (inf) or of no image (nan) is null
        summary = {name: {k: v if math.isfinite(v) else None for k, v in r.summary().items()}
                   for name, r in results.items()}
        print(json.dumps(summary, indent=2, allow_nan=False))
    else:
        channel = "RGB" if args.rgb else "Y channel"
        _print_table(results, f"{args.model} x{scale} ({channel}, crop border {scale})")
    for name, image, why in skipped:
        print(f"warning: skipped {name}/{image}: {why}", file=sys.stderr)
    if skipped:
        print(f"warning: {len(skipped)} image(s) could not be evaluated; means exclude them", file=sys.stderr)
    return 1 if skipped else 0
