"""``repsr merge IN -o OUT``: training-time weights in, plain deploy network out.

The output format follows OUT's suffix, and each suffix belongs to one engine of
:mod:`repsr.inference.engines`: ``.safetensors`` (repsr's format, rebuilds itself), ``.pth`` with
``--format compact`` (``{"params": ...}``, loads in Real-ESRGAN, chaiNNer and spandrel as
SRVGGNetCompact), ``.onnx`` (onnxruntime and others; see :mod:`repsr.export.onnx`), ``.xml``
(OpenVINO IR, written with its ``.bin`` beside it; dynamic H/W, fp32 weights), ``.param`` (ncnn, with its
``.bin``: Upscayl and realesrgan-ncnn-vulkan load it; ``--precision fp16`` halves the ``.bin``; see
:mod:`repsr.export.ncnn`), ``.mlpackage`` (Core ML ML Program for Xcode, flexible H/W, fp32 or fp16; see
:mod:`repsr.export.coreml`) or ``.pte`` (ExecuTorch with XNNPACK, for Android/iOS apps, fp32 or fp16; see
:mod:`repsr.export.executorch`). ``docs/deploy.md`` maps each format to the apps that load it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from repsr.errors import UserError
from repsr.hub import model_path
from repsr.inference import ENGINES, load_runner, output_suffixes, writer_for
from repsr.models import family, model_config
from repsr.reparam.convert import reparameterize
from repsr.weights import read_metadata

SIBLING_BIN = (".xml", ".param")  # formats written with a .bin beside them
# formats that fold a BGR net's order into an RGB file and cannot carry it otherwise: the order must be known
RGB_FILES = (".param", ".mlpackage", ".pte")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("merge", help="merge a training-time network into a plain conv net and export it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="weights file (.safetensors from repsr, or a supported .pth) or shipped name")
    p.add_argument("-o", "--output", required=True,
                   help="output file: " + ", ".join(output_suffixes()) + " (the suffix picks the format)")
    p.add_argument("--format", choices=("repsr", "compact"), default=None,
                   help="for .pth output: 'compact' writes Real-ESRGAN's {'params': state_dict} layout")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset for .onnx output (default 18)")
    p.add_argument("--precision", choices=sorted({p for e in ENGINES.values() for p in e.export_precisions}),
                   default="fp32", help="weights stored as (fp16: .param, .mlpackage, .pte; default fp32)")
    p.add_argument("--bgr", action="store_true",
                   help="the weights expect BGR input (the official Bicubic++ .pth, which cannot say so)")
    p.add_argument("--check", action="store_true", help="verify the merged net against the input on a random image")
    p.set_defaults(run=run)


def _check_equal(model: torch.nn.Module, merged: torch.nn.Module) -> float:
    """Largest absolute output difference on a random 3x37x29 input (odd size: borders matter)."""
    x = torch.rand(1, model_config(model).in_channels, 37, 29, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return float((model(x) - merged(x)).abs().max().item())


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    suffix = out.suffix.lower()
    engine = writer_for(out)
    if engine is None:
        raise UserError(f"{out}: output must end in {', '.join(output_suffixes())}")
    if suffix == ".pth" and args.format != "compact":
        raise UserError("a .pth output needs --format compact (repsr's own format is .safetensors)")
    model = load_runner(args.input, bgr=True if args.bgr else None, network=True)
    path = model_path(args.input)
    known = family(model_config(model).arch)
    if suffix in RGB_FILES and known.bgr_release and not args.bgr and not _states_config(path):
        raise UserError(f"{path}: a {known.name} file that cannot say its channel order, and a {suffix} file is always "
                        f"RGB: pass --bgr for {known.bgr_release} (BGR-trained), or merge to .safetensors first if RGB")
    merged = reparameterize(model).eval()
    if args.check:
        diff = _check_equal(model, merged)
        if diff > 1e-4:
            raise UserError(f"merged network differs from the training graph by {diff:.2e}")
        print(f"check: max |merged - original| = {diff:.2e}")
    if suffix == ".onnx":
        from repsr.export.onnx import export_onnx

        engine.check_export(args.precision)
        export_onnx(merged, out, opset=args.opset)
        notes: list[str] = []
    else:
        notes = engine.export(merged, out, args.precision)
    params = sum(p.numel() for p in merged.parameters())
    cfg = model_config(merged)
    also = f" and {out.with_suffix('.bin').name}" if suffix in SIBLING_BIN else ""
    print(f"wrote {out}{also} ({cfg.arch} x{cfg.scale}, {params:,} parameters; for {engine.runtime})")
    for note in notes:
        print(f"note: {note}")
    return 0


def _states_config(path: Path) -> bool:
    """Whether a weights file carries repsr's config (and with it the channel order its weights expect)."""
    return path.suffix == ".safetensors" and "config" in read_metadata(path)
