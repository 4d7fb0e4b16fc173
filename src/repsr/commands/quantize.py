"""``repsr quantize MODEL -o OUT.onnx --calib DIR``: a static-quantized (QDQ, INT8) ONNX file.

Calibrates on aligned crops of *training* images (``--calib``), degraded as the model was trained
(MATLAB bicubic by default), and with ``--val`` scores fp32 and INT8 side by side with repsr's
evaluator and prints the PSNR drop, measured on the runtime that will run the file (``--backend``) on this
CPU; a drop above ``--max-drop`` on any set is refused (nothing is written) with what to try instead.
``--target`` picks the weight encoding from the CPUs the file is for: the default ``any`` never
saturates (x86 without VNNI included), ``vnni`` keeps full-range int8 weights. Calibrating on a folder
that is also scored is refused: the drop would be measured on the data that set the ranges. The INT8
file runs in ``repsr eval``, ``repsr upscale`` and ``repsr bench`` like any ``.onnx`` file. Options and
measured drops: docs/deploy.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from repsr.data.degrade import DegradeKind
from repsr.errors import UserError
from repsr.export.quantize import (
    ACTIVATIONS,
    CALIB_IMAGES,
    KEEP_FLOAT,
    METHODS,
    TARGETS,
    QuantOptions,
    parse_keep_float,
)

if TYPE_CHECKING:
    from repsr.int8_drop import Int8Drop

INT8_BACKENDS = ("onnx", "openvino")  # the engines that run a QDQ file's integer kernels
MAX_DROP = 0.25  # dB: every shipped file loses <= 0.14 with the defaults (docs/deploy.md)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("quantize", help="static INT8 (QDQ) ONNX export, calibrated on training images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="shipped model name, weights file (merged first) or fp32 .onnx")
    p.add_argument("-o", "--output", required=True, type=Path, help="the INT8 .onnx file to write")
    p.add_argument("--calib", required=True, nargs="+", metavar="DIR",
                   help="folders of training HR images (e.g. T91 BSD200; not the sets you report)")
    p.add_argument("--val", nargs="+", metavar="DIR", default=[],
                   help="benchmark sets to score fp32 and INT8 on (e.g. Set5 Set14 B100)")
    p.add_argument("--calib-images", type=int, default=CALIB_IMAGES,
                   help=f"images per calibration folder (default {CALIB_IMAGES})")
    p.add_argument("--calib-crop", type=int, default=64, help="LR crop size of each calibration image (default 64)")
    p.add_argument("--degradation", choices=get_args(DegradeKind), default="bicubic",
                   help="how LR calibration images are made (default MATLAB bicubic, as training)")
    p.add_argument("--method", choices=METHODS, default="minmax", help="calibration method (default minmax)")
    p.add_argument("--percentile", type=float, default=99.999, help="with --method percentile (default 99.999)")
    p.add_argument("--activations", choices=ACTIVATIONS, default="uint8",
                   help="activation type (default uint8; uint16 = A16W8, for NPUs that run it)")
    p.add_argument("--keep-float", default="tail", metavar="PARTS",
                   help=f"comma-separated parts left in float: {', '.join(KEEP_FLOAT)} or 'none' (default tail)")
    p.add_argument("--fuse-activations", action="store_true",
                   help="leave conv outputs unquantized, as hardware that fuses conv + PReLU runs them "
                        "(onnxruntime then runs those convs in float)")
    p.add_argument("--no-equalize", action="store_true", help="skip cross-layer range equalization")
    p.add_argument("--target", choices=tuple(TARGETS), default="any",
                   help="; ".join(f"{t.name}: {t.runs_on}" for t in TARGETS.values()))
    p.add_argument("--backend", choices=INT8_BACKENDS, default="onnx",
                   help="the runtime that measures the --val drop (default onnx = onnxruntime)")
    p.add_argument("--max-drop", type=float, default=MAX_DROP,
                   help=f"refuse the file when any --val set loses more dB than this (default {MAX_DROP})")
    p.add_argument("--bgr", action="store_true", help="the weights expect BGR input (official Bicubic++ .pth)")
    p.set_defaults(run=run)


def _options(args: argparse.Namespace) -> QuantOptions:
    return QuantOptions(args.method, args.activations, parse_keep_float(args.keep_float), args.percentile,
                        equalize=not args.no_equalize, conv_outputs=not args.fuse_activations, target=args.target)


def _check_folders(args: argparse.Namespace) -> None:
    if args.calib_images < 1 or args.calib_crop < 8:
        raise UserError("--calib-images must be >= 1 and --calib-crop >= 8")
    if args.output.suffix.lower() != ".onnx":
        raise UserError(f"--output must end in .onnx, got {args.output}")
    for folder in args.calib:
        if not Path(folder).is_dir():
            raise UserError(f"--calib: {folder} is not a folder")
    scored = {Path(v).resolve() for v in args.val}
    overlap = [c for c in args.calib if Path(c).resolve() in scored]
    if overlap:
        raise UserError(f"{overlap[0]} is both a calibration and a validation set; calibrate on training images")


def _print(report: Int8Drop) -> None:
    print(f"{'set':<12}{'fp32 dB':>10}{'INT8 dB':>10}{'drop dB':>10}   (Y PSNR, crop {report.scale}; INT8 on "
          f"{report.engine}, {report.cpu})")
    for s in report.sets:
        print(f"{s.name:<12}{s.fp32_psnr:>10.3f}{s.int8_psnr:>10.3f}{s.drop:>10.3f}")


def _refusal(report: Int8Drop, options: QuantOptions, args: argparse.Namespace) -> str:
    worst = report.worst
    tries = ["--target any"] if options.target == "vnni" else []
    tries += ["--activations uint16"] if options.activations == "uint8" else []
    tries += ["--keep-float tail,head"] if "head" not in options.keep_float else []
    return (f"INT8 loses {worst.drop:.3f} dB on {worst.name} on this CPU ({args.backend}), more than --max-drop "
            f"{args.max_drop}; {args.output} not written (try {' or '.join(tries) or 'more --calib images'}, "
            "or raise --max-drop to keep it)")


def run(args: argparse.Namespace) -> int:
    from torch import nn

    from repsr.atomic import atomic_write
    from repsr.export.quantize import calibration_batches, quantize_model, quantize_onnx, saturation_warning
    from repsr.inference import load_runner
    from repsr.inference.engines.onnxruntime import OnnxUpscaler
    from repsr.int8_drop import measure_int8_drop
    from repsr.models import model_config
    from repsr.reparam.convert import reparameterize

    _check_folders(args)
    options = _options(args)
    if args.val:
        from repsr.inference.engines import ENGINES

        ENGINES[args.backend].require()
    warning = saturation_warning(args.output, {"repsr.quantization": "", "repsr.int8_target": options.target})
    if warning:
        print(warning, file=sys.stderr)
    start = time.perf_counter()
    runner = load_runner(args.model, bgr=True if args.bgr else None)
    if isinstance(runner, OnnxUpscaler):
        config = runner.config
    elif isinstance(runner, nn.Module):
        config = model_config(runner)
    else:
        raise UserError(f"{args.model}: repsr quantize takes weights or an .onnx file")
    if config is None:
        raise UserError(f"{args.model}: an ONNX file without repsr metadata cannot be calibrated (export it "
                        "with repsr merge)")
    batches = calibration_batches(args.calib, config, images=args.calib_images, crop=args.calib_crop,
                                  degradation=args.degradation)
    model: nn.Module | OnnxUpscaler = runner if isinstance(runner, OnnxUpscaler) else reparameterize(runner).eval()
    if isinstance(model, OnnxUpscaler) and options.equalize:
        print("note: an .onnx input is quantized without range equalization (pass weights for it)", file=sys.stderr)

    def write(tmp: str) -> None:
        """Quantize into ``tmp``; with --val, measure it there and refuse it before it becomes ``--output``."""
        if isinstance(model, OnnxUpscaler):
            quantize_onnx(model.path, tmp, batches, options)
        else:
            quantize_model(model, tmp, batches, options)
        if args.val:
            report = measure_int8_drop(model, tmp, args.val, config.scale, args.backend)
            _print(report)
            if report.worst.drop > args.max_drop:
                raise UserError(_refusal(report, options, args))

    atomic_write(args.output, write, suffix=".onnx")
    crops = sum(len(b) for b in batches)
    print(f"wrote {args.output} ({options.describe()}; {crops} calibration crops of {args.calib_crop} px, "
          f"{time.perf_counter() - start:.1f} s)")
    return 0
