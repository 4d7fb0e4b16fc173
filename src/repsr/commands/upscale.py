"""``repsr upscale INPUT... -o OUT``: images, folders and videos through a merged network.

Options follow Real-ESRGAN's vocabulary (``-s``, ``-t/--tile``, ``--tile-pad``, ``--suffix``,
``--ext``, ``--half``), so its users need nothing new. ``-s`` alone picks the shipped model of
that scale (x2, x3, x4; any other scale uses the nearest one and resizes its output); with
``--model`` it is the final output scale (resized after the network, like Real-ESRGAN's
``--outscale``). Either way a resize is announced in a ``note:`` line. A file that cannot be
processed is reported as one line and skipped; the exit code is 1 when any file failed.
Outputs never overwrite an input and two inputs never share an output name: such a run is
refused before any work. ``repsr upscale --sample -o out.png`` upscales the test chart shipped
in the package (the README's first command).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from importlib import resources
from pathlib import Path

from repsr.errors import UserError
from repsr.hub import FAST_MODEL, default_model_name, shipped_models
from repsr.inference import ALIASES, BACKENDS, ENGINES, PRECISIONS, Upscaler, load_upscaler
from repsr.upscale import EXTS, Job, UpscaleOptions, input_megapixels, plan_jobs, upscale_image_file, upscale_jobs

SLOW_TILE = 32  # LR pixels: below this a tile's context border and per-call cost dominate (-t 1 ran ~40x slower)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("upscale", help="upscale images, folders and videos", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image or video files, or folders (recursive)")
    p.add_argument("-i", "--input", action="append", default=[], dest="extra_inputs",
                   help="another input (Real-ESRGAN style; may repeat)")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    p.add_argument("--model", "-m", "-n", help="shipped model name or weights path (.safetensors, .pth, .onnx)")
    p.add_argument("-s", "--scale", "--outscale", type=float, default=None,
                   help="output scale; alone it picks the shipped model of that scale (default 4)")
    p.add_argument("-t", "--tile", type=int, default=0, help="tile size in LR pixels, 0 = whole image (default)")
    p.add_argument("--tile-pad", "--tile_pad", type=int, default=None,
                   help="context around each tile (default: the model's receptive-field radius, exact)")
    p.add_argument("--half", action="store_true", help="fp16 on CUDA (falls back to fp32 on inf/NaN)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--suffix", default="", help="appended to output file names (default none)")
    p.add_argument("--ext", choices=EXTS, default="auto", help="output image format (default: as input)")
    p.add_argument("--backend", choices=BACKENDS + tuple(ALIASES), default="auto",
                   help="engine: " + ", ".join(f"{e.name} ({e.runtime})" for e in ENGINES.values())
                        + "; auto (default): the fastest exact one installed (OpenVINO on the CPU, PyTorch on CUDA)")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                   help="auto (default): bf16 where the engine runs it natively (OpenVINO on AVX512-BF16/AMX CPUs; "
                        "<= 0.005 dB from fp32 on every shipped model), else fp32; fp32: exact; bf16/fp16 where "
                        "native; int8 for an INT8 file from repsr quantize")
    p.add_argument("--batch", type=int, default=None,
                   help="video frames per network call (default: by frame size, 1 for 640x360 and larger, "
                        "up to 8 for small frames; more frames per call cost memory)")
    p.add_argument("--fast", action="store_true",
                   help="the shipped Bicubic++ of that scale (near-bicubic cost, a few tenths of a dB over bicubic) "
                        "instead of the M4C16 net")
    p.add_argument("--sample", action="store_true", help="upscale the sample image shipped with repsr")
    p.set_defaults(run=run)


def _model_choice(args: argparse.Namespace) -> tuple[str, float | None]:
    """(model name or path, outscale or None) from ``--model`` and ``-s``.

    Without ``--model``, ``-s`` picks the shipped model of the nearest scale at or above it
    (within x2..x4); the output is then resized to ``-s``, which :func:`run` announces.
    """
    if args.scale is not None and not 0 < args.scale <= 16:
        raise UserError(f"--scale must be in (0, 16], got {args.scale}")
    if args.model:
        if args.fast:
            raise UserError("--fast picks the shipped Bicubic++ model; drop --model or --fast")
        return args.model, args.scale
    scale = 4.0 if args.scale is None else args.scale
    if args.fast:
        prefix = FAST_MODEL.split("{")[0]
        shipped = sorted(int(n[len(prefix):]) for n in shipped_models() if n.startswith(prefix))
        if not shipped:
            raise UserError("--fast: no shipped Bicubic++ model in this installation")
        nearest = next((s for s in shipped if s >= scale), shipped[-1])
        return default_model_name(nearest, fast=True), (None if scale == nearest else scale)
    nearest = min(4, max(2, math.ceil(scale)))
    return default_model_name(nearest), (None if scale == nearest else scale)


def _describe(upscaler: Upscaler, model: str) -> str:
    return f"{model} (x{upscaler.scale}, {getattr(upscaler, 'engine', type(upscaler).__name__)})"


def run_sample(args: argparse.Namespace, upscaler: Upscaler, model: str, opts: UpscaleOptions) -> int:
    """Upscale the packaged test chart and say what happened (the README's first command)."""
    source = Path(str(resources.files("repsr") / "assets" / "sample.png"))
    target = Path(args.output)
    if target.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        target = target / "sample.png"
    start = time.perf_counter()
    size_in, size_out = upscale_image_file(upscaler, Job(source, target), opts)
    print(f"upscaled the sample image {source.name} {size_in[0]}x{size_in[1]} -> {size_out[0]}x{size_out[1]} "
          f"with {_describe(upscaler, model)} in {time.perf_counter() - start:.2f} s; wrote {target}")
    return 0


def run(args: argparse.Namespace) -> int:
    inputs = list(args.inputs) + list(args.extra_inputs)
    if not inputs and not args.sample:
        raise UserError("no input given (pass files or folders, or --sample)")
    bad_batch = args.batch is not None and args.batch < 1
    if args.tile < 0 or (args.tile_pad is not None and args.tile_pad < 0) or bad_batch:
        raise UserError("--tile, --tile-pad must be >= 0 and --batch >= 1")
    model, outscale = _model_choice(args)
    opts = UpscaleOptions(tile=args.tile, tile_pad=args.tile_pad, suffix=args.suffix, ext=args.ext,
                          outscale=outscale, batch=args.batch)
    jobs = plan_jobs(inputs, args.output, opts) if inputs else []
    if inputs and not jobs:
        raise UserError(f"no images or videos found in {', '.join(inputs)}")
    upscaler = load_upscaler(model, args.backend, args.device, args.half, precision=args.precision,
                             workload_mpix=input_megapixels(jobs) if args.backend == "auto" else 0.0)
    scale = upscaler.scale
    if 0 < args.tile < SLOW_TILE:
        pad = upscaler.receptive_radius if args.tile_pad is None else args.tile_pad
        print(f"warning: --tile {args.tile} is tiny: each tile also computes {pad} px of context on every side "
              f"(~{(1 + 2 * pad / args.tile) ** 2:.0f}x the work) plus a network call; try --tile 256",
              file=sys.stderr)
    if outscale is not None and outscale != scale:
        shipped = "" if args.model else f"no shipped x{outscale:g} model: "
        print(f"note: {shipped}{model} is x{scale}; its output is resized to x{outscale:g} "
              f"({'bicubic' if outscale > scale else 'area'} filter)", file=sys.stderr)
    if args.sample:
        return run_sample(args, upscaler, model, opts)
    failed = upscale_jobs(upscaler, jobs, opts)
    return 1 if failed else 0
