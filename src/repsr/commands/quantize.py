"""``repsr quantize MODEL -o OUT.onnx --calib DIR``: a static-quantized (QDQ, INT8) ONNX file.

Calibrates on aligned crops of *training* images (``--calib``), degraded as the model was trained
(MATLAB bicubic by default), and with ``--val`` scores fp32 and INT8 side by side with repsr's
evaluator and prints the PSNR drop. Calibrating on a folder that is also scored is refused: the
drop would be measured on the data that set the ranges. The INT8 file runs in ``repsr eval``,
``repsr upscale`` and ``repsr bench`` like any ``.onnx`` file. Options and measured drops:
docs/deploy.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from repsr.errors import UserError
from repsr.export.quantize import ACTIVATIONS, CALIB_IMAGES, KEEP_FLOAT, METHODS, QuantOptions


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--degradation", choices=("bicubic", "ntire"), default="bicubic",
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
    p.add_argument("--bgr", action="store_true", help="the weights expect BGR input (official Bicubic++ .pth)")
    p.set_defaults(run=run)


def _options(args: argparse.Namespace) -> QuantOptions:
    text = args.keep_float.strip()
    parts = () if text == "none" else tuple(p.strip() for p in text.split(",") if p.strip())
    return QuantOptions(args.method, args.activations, parts, args.percentile, equalize=not args.no_equalize,
                        conv_outputs=not args.fuse_activations)


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


def _report(fp32: object, int8_path: Path, folders: list[str], scale: int) -> None:
    from repsr.evaluate import evaluate
    from repsr.export.onnx import OnnxUpscaler

    before = evaluate(fp32, folders, scale, progress=False)
    after = evaluate(OnnxUpscaler(int8_path), folders, scale, progress=False)
    print(f"{'set':<12}{'fp32 dB':>10}{'INT8 dB':>10}{'drop dB':>10}   (Y PSNR, crop {scale})")
    for name, r in before.items():
        q = after[name]
        print(f"{name:<12}{r.psnr:>10.3f}{q.psnr:>10.3f}{r.psnr - q.psnr:>10.3f}")


def run(args: argparse.Namespace) -> int:
    from repsr.export.onnx import OnnxUpscaler
    from repsr.export.quantize import calibration_batches, quantize_model, quantize_onnx
    from repsr.inference import load_runner
    from repsr.reparam.convert import reparameterize

    _check_folders(args)
    options = _options(args)
    start = time.perf_counter()
    model = load_runner(args.model, bgr=True if args.bgr else None)
    config = model.config
    if config is None:
        raise UserError(f"{args.model}: an ONNX file without repsr metadata cannot be calibrated (export it "
                        "with repsr merge)")
    batches = calibration_batches(args.calib, config, images=args.calib_images, crop=args.calib_crop,
                                  degradation=args.degradation)
    if isinstance(model, OnnxUpscaler):
        if options.equalize:
            print("note: an .onnx input is quantized without range equalization (pass weights for it)",
                  file=sys.stderr)
        quantize_onnx(model.path, args.output, batches, options)
    else:
        model = reparameterize(model).eval()
        quantize_model(model, args.output, batches, options)
    crops = sum(len(b) for b in batches)
    print(f"wrote {args.output} ({options.describe()}; {crops} calibration crops of {args.calib_crop} px, "
          f"{time.perf_counter() - start:.1f} s)")
    if args.val:
        _report(model, args.output, args.val, config.scale)
    return 0
