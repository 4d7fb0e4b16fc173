"""``repsr prune``: global structured pruning of a Bicubic++ net (stage 2), and bias removal (stage 3).

``repsr prune WEIGHTS --data VAL_DIR... --target-channels 32 [--finetune-iters N --train DIR...] -o OUT``
prunes channels chosen by the validation PSNR they cost (see :mod:`repsr.prune.search`), fine-tuning
``N`` iterations after each round, and writes a dense, smaller net. ``--drop-bias`` then removes
every bias and fine-tunes ``--bias-finetune-iters`` iterations: the final, bias-free artefact.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from repsr.errors import ReprError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("prune", help="Bicubic++: global structured pruning by validation PSNR",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="Bicubic++ weights (repsr .safetensors, or the official .pth layout)")
    p.add_argument("--data", required=True, nargs="+", metavar="DIR", help="validation HR folders (or sets with HR/)")
    p.add_argument("--target-channels", type=int, required=True, help="final width of every prunable layer")
    p.add_argument("--target-mid-channels", type=int, default=None, help="final width of conv1 (default: same)")
    p.add_argument("--per-round", type=int, default=2, help="channels removed per costing round (default 2)")
    p.add_argument("--train", nargs="+", default=[], metavar="DIR", help="HR training folders for fine-tuning")
    p.add_argument("--finetune-iters", type=int, default=0, help="fine-tuning iterations after each round")
    p.add_argument("--drop-bias", action="store_true", help="stage 3: remove all biases, then fine-tune")
    p.add_argument("--bias-finetune-iters", type=int, default=0, help="fine-tuning iterations after --drop-bias")
    p.add_argument("--finetune-config", default=None, metavar="CONFIG",
                   help="at the end, fine-tune with `repsr train CONFIG` (its model section is replaced by the net's)")
    p.add_argument("--set", dest="overrides", nargs="+", action="append", default=[], metavar="KEY=VALUE",
                   help="overrides for --finetune-config, as in repsr train")
    p.add_argument("--degradation", choices=("ntire", "bicubic"), default="ntire",
                   help="how LR is made for validation and fine-tuning (default ntire: Pillow bicubic + JPEG 90)")
    p.add_argument("--val-images", type=int, default=8, help="images per validation folder (default 8)")
    p.add_argument("--val-crop", type=int, default=96, help="LR centre-crop side of each validation image")
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (decays linearly to 10%%)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch-size", type=int, default=48, help="LR training patch side")
    p.add_argument("--bgr", action="store_true", help="the weights expect BGR input (the official release)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output .safetensors")
    p.set_defaults(run=run)


def _load(args: argparse.Namespace):
    from repsr.weights import load_model

    model = load_model(args.weights, bgr=True if args.bgr else None)
    if model.config.arch != "bicubic_pp":
        raise ReprError(f"{args.weights}: repsr prune handles Bicubic++ nets, not '{model.config.arch}'")
    return model.float()


def _check(args: argparse.Namespace) -> None:
    if args.output.suffix != ".safetensors":
        raise ReprError(f"{args.output}: output must be a .safetensors file")
    if (args.finetune_iters > 0 or args.bias_finetune_iters > 0) and not args.train:
        raise ReprError("fine-tuning needs --train DIR... (HR training images)")
    if args.per_round < 1 or args.val_crop < 8 or args.val_images < 1:
        raise ReprError("--per-round and --val-images must be >= 1 and --val-crop >= 8")


def _finetuner(args: argparse.Namespace, scale: int):
    from repsr.prune import FinetuneConfig, Finetuner

    if not args.train:
        return None
    return Finetuner(FinetuneConfig(tuple(args.train), scale, args.finetune_iters, args.batch_size,
                                    args.patch_size, args.lr, degradation=args.degradation))


def _drop_bias(args: argparse.Namespace, model, val, tuner, record: dict) -> object:
    """Stage 3 by the in-process fine-tuner: drop every bias, fine-tune ``--bias-finetune-iters``."""
    from repsr.prune import batch_psnr, drop_biases

    model = drop_biases(model)
    record["psnr_bias_dropped"] = batch_psnr(model, val)
    print(f"drop-bias: val PSNR {record['psnr_bias_dropped']:.4f} dB")
    if tuner is not None and args.bias_finetune_iters > 0:
        model = tuner(model, args.bias_finetune_iters)
        record["psnr_bias_finetuned"] = batch_psnr(model, val)
        print(f"drop-bias: after {args.bias_finetune_iters} iterations {record['psnr_bias_finetuned']:.4f} dB")
    return model


def run(args: argparse.Namespace) -> int:
    from repsr.prune import batch_psnr, global_prune, load_val_batch
    from repsr.weights import save_model

    _check(args)
    model = _load(args)
    val = load_val_batch(args.data, model.config.scale, args.degradation, max_images=args.val_images,
                         crop=args.val_crop)
    from repsr.prune.valset import bicubic_psnr

    print(f"validation: {len(val.names)} crops of {args.val_crop} px ({args.degradation} LR), RGB PSNR, no border "
          f"crop; torch bicubic (a = -0.75) scores {bicubic_psnr(val):.4f} dB")
    tuner = _finetuner(args, model.config.scale)
    mid = args.target_mid_channels if args.target_mid_channels is not None else args.target_channels
    try:
        model, history = global_prune(model, val, {"residual": args.target_channels, "mid": mid}, args.per_round,
                                      tuner if tuner is not None and args.finetune_iters > 0 else None)
    except ValueError as exc:
        raise ReprError(str(exc)) from None
    record = {"psnr_start": history.psnr_start, "psnr_pruned": batch_psnr(model, val)}
    if args.drop_bias:
        model = _drop_bias(args, model, val, tuner, record)
    if args.finetune_config:
        from repsr.prune.stage import finetune_with_trainer

        model = finetune_with_trainer(model, args.finetune_config, [o for group in args.overrides for o in group])
        record["psnr_trainer_finetuned"] = batch_psnr(model, val)
        print(f"fine-tuned with {args.finetune_config}: val PSNR {record['psnr_trainer_finetuned']:.4f} dB")
    save_model(model.eval(), args.output, metadata={"prune": json.dumps(record)})
    print(f"wrote {args.output} ({model.config.channels} channels, bias={model.config.bias})")
    return 0
