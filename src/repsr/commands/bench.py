"""``repsr bench``: speed of a network (training graph, merged eager, torch.compile, onnxruntime fp32/INT8)
next to bicubic, and with ``--folder`` ``repsr upscale`` end to end next to the network alone.

Every number is measured in the same run as a large fp32 matmul (the machine's practical FLOP
rate) and OpenCV bicubic, so the ratios hold even on a busy machine. ``--model`` takes an arch
preset (``repsr:M4C16``, ``ecbsr:M16C64``, ``bicubic_pp``), a shipped name, a weights path or an
``.onnx`` file (fp32 from ``repsr merge`` or INT8 from ``repsr quantize``; one onnxruntime row).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import torch

from repsr.bench import DEFAULT_SIZES, BenchResult, run_bench
from repsr.bench_folder import FolderBench, run_folder_bench
from repsr.errors import UserError
from repsr.models import FAMILIES
from repsr.ntire import bench_score_lines


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="measure throughput against matmul peak and bicubic", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", default=["repsr:M4C16"],
                   help="arch[:MxCy] preset (arch: " + ", ".join(a for a, f in FAMILIES.items() if f.trainable)
                   + "), shipped name, weights file or .onnx file (default repsr:M4C16); several are timed "
                   "side by side in one interleaved run")
    p.add_argument("--sizes", default=DEFAULT_SIZES,
                   help=f"comma-separated WIDTHxHEIGHTxSCALE of the LR input (default {DEFAULT_SIZES})")
    p.add_argument("--threads", default=None, help="CPU thread counts to compare, e.g. 1,2 (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda (fp16 + NTIRE protocol)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs (default 3 on CPU, 50 on CUDA)")
    p.add_argument("--reps", type=int, default=None, help="timed runs (default 10 on CPU, 244 on CUDA)")
    p.add_argument("--no-onnx", action="store_true",
                   help="skip the onnxruntime fp32 and INT8 rows (export and quantization take seconds)")
    p.add_argument("--no-compile", action="store_true",
                   help="skip the torch.compile row (compiling takes seconds)")
    p.add_argument("--folder", default=None,
                   help="also time repsr upscale end to end on this folder's images next to the network alone "
                        "(eager and compiled; --model must then be a shipped name or weights file)")
    p.add_argument("--folder-reps", type=int, default=3, help="interleaved rounds over --folder (default 3)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    # Hook for Bicubic++ runs (repsr.ntire): the NTIRE 2023 score of each network row at 1280x720x3.
    p.add_argument("--ntire-psnr", nargs=2, type=float, default=None, metavar=("PSNR", "PSNR_BICUBIC"),
                   help="print the NTIRE 2023 score from these PSNRs (RGB, NTIRE LR) and each row's time")
    p.add_argument("--ntire-kernel", default="matlab", choices=("matlab", "pillow", "torch", "opencv"),
                   help="the bicubic that gave PSNR_BICUBIC (default matlab, a = -0.5)")
    p.set_defaults(run=run)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(result: BenchResult) -> str:
    """Plain fixed-width table (pastes into Markdown code blocks) with the matmul reference."""
    lines = [f"model {result.model} on {result.device} ({result.cpu}), {result.warmup} warm-up "
             f"+ {result.reps} timed runs, interleaved (median); % peak = achieved conv GFLOP/s / matmul G(FL)OP/s "
             "of the row's precision; x bicubic = time / OpenCV uint8 time; x eager = merged fp32 NCHW time / time; "
             "setup = compile seconds"]
    for t, peaks in result.peak_gflops.items():
        rates = ", ".join(f"{p} {g:.1f}" for p, g in peaks.items())
        lines.append(f"matmul 2048^3 with {t} thread(s), G(FL)OP/s: {rates}")
    width = max([27] + [len(r.model) + len(r.name) + 3 for r in result.rows if r.model])
    head = f"{'size':<14}{'row':<{width}}{'thr':>4}{'ms/frame':>10}{'MP/s':>8}{'GFLOP':>8}{'GFLOP/s':>9}" \
           f"{'% peak':>9}{'x bicubic':>10}{'x eager':>8}{'setup s':>8}"
    lines += [head, "-" * len(head)]
    for r in result.rows:
        name = f"{r.model}: {r.name}" if r.model else r.name  # a model is named only when several are compared
        lines.append(f"{r.size:<14}{name:<{width}}{r.threads:>4}{r.ms:>10.2f}{r.mpix_per_s:>8.1f}"
                     f"{_fmt(r.gflop, '.2f'):>8}{_fmt(r.gflop_per_s, '.1f'):>9}"
                     f"{_fmt(r.pct_matmul, '.1f'):>9}{_fmt(r.x_bicubic, '.2f'):>10}"
                     f"{_fmt(r.x_eager, '.2f'):>8}{_fmt(r.setup_s, '.1f'):>8}")
    return "\n".join(lines)


def format_folder_table(result: FolderBench) -> str:
    """Fixed-width table of :func:`repsr.bench_folder.run_folder_bench`'s rows."""
    w, h = result.first_size
    lines = [f"folder {result.folder}: {result.images} images (first {w}x{h}), model {result.model}, "
             f"{result.threads} thread(s), median of {result.reps} interleaved rounds",
             f"default backend of repsr upscale for this folder (auto): {result.default}",
             "x eager = network-only eager time / this time; x network = this time / same backend's network only"]
    head = f"{'backend':<12}{'stage':<15}{'ms/image':>10}{'x eager':>9}{'x network':>11}{'setup s':>9}"
    lines += [head, "-" * len(head)]
    for r in result.rows:
        lines.append(f"{r.backend:<12}{r.stage:<15}{r.ms_per_image:>10.1f}{r.x_eager:>9.2f}{r.x_network:>11.2f}"
                     f"{_fmt(r.setup_s, '.1f'):>9}")
    return "\n".join(lines)


def _threads(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"--threads: '{text}' is not a comma-separated list of integers") from None
    if min(values) < 1:
        raise UserError("--threads must be >= 1")
    return values


def run(args: argparse.Namespace) -> int:
    if (args.warmup is not None and args.warmup < 0) or (args.reps is not None and args.reps < 1):
        raise UserError("--warmup must be >= 0 and --reps >= 1")
    if args.folder_reps < 1:
        raise UserError("--folder-reps must be >= 1")
    threads = _threads(args.threads)
    if len(args.model) > 1 and args.folder is not None:
        raise UserError("--folder times one model end to end: give a single --model with it")
    if len(args.model) > 1 and args.ntire_psnr is not None:
        raise UserError("--ntire-psnr holds the PSNR of one model: give a single --model with it")
    result = run_bench(args.model, args.sizes, threads, args.device, args.warmup, args.reps,
                       onnx=not args.no_onnx, with_compile=not args.no_compile)
    folder = None
    if args.folder is not None:
        folder = run_folder_bench(args.model[0], args.folder, (threads or [torch.get_num_threads()])[0],
                                  args.folder_reps)
    if args.json:
        print(json.dumps({**asdict(result), **({"folder": asdict(folder)} if folder is not None else {})}, indent=2))
    else:
        print(format_table(result))
        if folder is not None:
            print()
            print(format_folder_table(folder))
    if args.ntire_psnr is not None:
        psnr, psnr_bicubic = args.ntire_psnr
        print("\n".join(bench_score_lines(result, psnr, psnr_bicubic, args.ntire_kernel)))
    return 0
