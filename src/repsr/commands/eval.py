"""``repsr eval``: PSNR/SSIM of one model or several side by side (MATLAB bicubic included).

One ``--model`` prints a paper-style table on stdout (or, with ``--json``, exactly
``{"<dataset>": {"psnr": float, "ssim": float, "images": int}, ...}``, the format scripts read).
Several ``--model`` values print ONE table, model x dataset, with each score's difference to the
FIRST model; ``--json`` then gives the same data as
``{"scale": s, "channel": "y"|"rgb", "reference": "<first>", "models": {"<model>": {"<dataset>":
{"psnr", "ssim", "images", "psnr_diff", "ssim_diff"}}}}`` (diffs are this model minus the first).
Every model must upscale by one scale (``--scale`` or the models' own). The progress bar goes to
stderr. Images that cannot be read are skipped and listed as ``warning:`` lines on stderr, and the
command then exits 1 so scripts notice; a dataset with no readable image at all is an error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table
from torch import nn

from repsr.errors import UserError
from repsr.evaluate import BICUBIC, Comparison, DatasetResult, compare, evaluate_many, model_scale
from repsr.inference import ALIASES, BACKENDS, PRECISIONS, Upscaler, load_runner, load_upscaler, resolve_device

Results = dict[str, dict[str, DatasetResult]]  # model -> dataset -> scores


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "eval", help="PSNR/SSIM of models (or MATLAB bicubic) on benchmark sets, side by side",
        description="Score models the way SR papers do: MATLAB-bicubic LR, uint8 SR, Y-channel "
                    "PSNR/SSIM with crop_border = scale. Several --model values give one table "
                    "with the difference of each to the first.")
    p.add_argument("-m", "--model", required=True, nargs="+", action="extend", metavar="MODEL",
                   help="'bicubic' (MATLAB bicubic upscale of the LR), a weights file (.safetensors, .pth), "
                        "an .onnx file (fp32 or INT8, run by onnxruntime) or a shipped model name; "
                        "several (or repeated -m) are compared with the first")
    p.add_argument("-d", "--data", required=True, nargs="+", metavar="DIR",
                   help="dataset folders (EDSR, DIV2K, GT/LQ or plain HR layout) or single images")
    p.add_argument("-s", "--scale", type=int, default=None,
                   help="upscaling factor (default: the models'; required when bicubic is the only model)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON (see the command's description)")
    p.add_argument("--save", metavar="DIR", type=Path, default=None,
                   help="write SR images to DIR/<dataset>/ (several models: DIR/<model>/<dataset>/)")
    p.add_argument("--rgb", action="store_true", help="score on RGB instead of the Y channel")
    p.add_argument("--device", default="cpu", help="torch device for the models (default: cpu)")
    p.add_argument("--backend", choices=BACKENDS + tuple(ALIASES), default=None,
                   help="run every model on this engine (default: PyTorch for weights, the file's own runtime "
                        "for .onnx/.xml), so each engine's and precision's PSNR is measured, not assumed")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="with --backend: fp32, bf16/fp16 (where native), int8 (an INT8 file)")
    p.add_argument("--threads", type=int, default=0, help="the engine's threads (default: its own choice)")
    p.add_argument("--bgr", action="store_true",
                   help="the weights expect BGR input (e.g. the official Bicubic++ .pth); applies to every model file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _label(name: str, names: list[str]) -> str:
    """A file's name without its folder, unless two models would then share a label."""
    short = Path(name).name
    return short if sum(Path(n).name == short for n in names) == 1 else name


def _load(args: argparse.Namespace) -> tuple[dict[str, nn.Module | Upscaler | None], int]:
    """``({label: model or None for bicubic}, scale)``; one scale for all, or a one-line error."""
    if len(set(args.model)) != len(args.model):
        twice = sorted({m for m in args.model if args.model.count(m) > 1})
        raise UserError(f"a model is given twice: {', '.join(twice)}")
    bgr = True if args.bgr else None
    if args.precision is not None and args.backend is None:
        raise UserError("--precision needs --backend (e.g. --backend openvino --precision bf16)")
    models: dict[str, nn.Module | Upscaler | None]
    if args.backend is not None:
        models = {_label(m, args.model): None if m == BICUBIC else
                  load_upscaler(m, args.backend, args.device, bgr=bgr, threads=args.threads, precision=args.precision)
                  for m in args.model}
    else:
        device = None if all(m == BICUBIC for m in args.model) else resolve_device(args.device)
        models = {_label(m, args.model): None if m == BICUBIC or device is None else
                  load_runner(m, device=device, bgr=bgr, threads=args.threads) for m in args.model}
    scales = {name: model_scale(model) for name, model in models.items() if model is not None}
    if args.scale is not None:
        wrong = {name: s for name, s in scales.items() if s != args.scale}
        if wrong:
            name, s = next(iter(wrong.items()))
            what = "the model" if len(models) == 1 else name
            raise UserError(f"{what} upscales x{s}, not x{args.scale}")
        return models, args.scale
    if not scales:
        raise UserError("--scale is required with --model bicubic")
    if len(set(scales.values())) > 1:
        raise UserError("the models upscale by different factors ("
                        + ", ".join(f"{n} x{s}" for n, s in scales.items()) + "): compare models of one scale")
    return models, next(iter(scales.values()))


def _finite(value: object) -> object:
    """``value`` with every non-finite float as None: strict JSON has no Infinity/NaN (a PSNR of identical images
    is inf, of no image nan)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _json(results: Results, comparison: Comparison) -> object:
    if len(results) == 1:
        return _finite({d: asdict(r.summary()) for d, r in next(iter(results.values())).items()})
    return _finite(asdict(comparison))


def _print_table(comparison: Comparison, title: str) -> None:
    many = len(comparison.models) > 1
    table = Table(title=title)
    for column in (["Dataset"] + (["Model"] if many else []) + ["Images", "PSNR (dB)", "SSIM"]
                   + (["ΔPSNR", "ΔSSIM"] if many else [])):
        table.add_column(column, justify="left" if column in ("Dataset", "Model") else "right")
    for d in comparison.models[comparison.reference]:
        for i, (name, sets) in enumerate(comparison.models.items()):
            r = sets[d]
            row = [d if i == 0 else "", *([name] if many else []), str(r.images), f"{r.psnr:.2f}", f"{r.ssim:.4f}"]
            if many:
                row += ["-", "-"] if i == 0 else [f"{r.psnr_diff:+.2f}", f"{r.ssim_diff:+.4f}"]
            table.add_row(*row, end_section=many and i == len(comparison.models) - 1)
    Console(file=sys.stdout, width=max(100, Console().width)).print(table)


def run(args: argparse.Namespace) -> int:
    if args.scale is not None and args.scale < 1:
        raise UserError(f"--scale must be a positive integer, got {args.scale}")
    models, scale = _load(args)
    save_dirs = None
    if args.save is not None:
        save_dirs = {n: args.save / n if len(models) > 1 else args.save for n in models}
    results = evaluate_many(models, args.data, scale, save_dirs=save_dirs, progress=not args.quiet,
                            y_channel=not args.rgb)
    for name, sets in results.items():
        for d, r in sets.items():
            if not r.images:
                reason = r.skipped[0][1] if r.skipped else "no images"
                raise UserError(f"{d}: no image could be evaluated ({reason})"
                                + (f" by {name}" if len(results) > 1 else ""))
    comparison = compare(results, scale, y_channel=not args.rgb)
    if args.json:
        print(json.dumps(_json(results, comparison), indent=2, allow_nan=False))
    else:
        what = args.model[0] if len(models) == 1 else f"{len(models)} models, differences to {comparison.reference}"
        _print_table(comparison, f"{what} x{scale} ({'RGB' if args.rgb else 'Y channel'}, crop border {scale})")
    skipped = sorted({(d, image, why) for sets in results.values()
                      for d, r in sets.items() for image, why in r.skipped})
    for d, image, why in skipped:
        print(f"warning: skipped {d}/{image}: {why}", file=sys.stderr)
    if skipped:
        print(f"warning: {len(skipped)} image(s) could not be evaluated; means exclude them", file=sys.stderr)
    return 1 if skipped else 0
