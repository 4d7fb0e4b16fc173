"""``repsr prune``: global structured pruning of a Bicubic++ net (stage 2), and bias removal (stage 3).

``repsr prune WEIGHTS --data VAL_DIR... --target-channels 32 [--finetune-iters N] -o OUT`` prunes
channels chosen by the validation PSNR they cost (see :mod:`repsr.prune.search`), fine-tuning ``N``
iterations after each round, and writes a dense, smaller net. ``--drop-bias`` then removes every
bias and fine-tunes ``--bias-finetune-iters`` iterations: the final, bias-free artefact.

Every fine-tune is a ``repsr train`` run with one config: ``--finetune-config CONFIG`` (else
Bicubic++'s recipe) with ``--set KEY=VALUE`` overrides, as in ``repsr train``. ``--train``,
``--lr``, ``--batch-size``, ``--patch-size`` and ``--degradation`` are shorthands for
``data.train``, ``train.lr`` (and ``optim.min_lr`` = lr / 10), ``train.batch_size``,
``train.patch_size`` and ``data.degradation``. With a config, its full run comes last.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from repsr.data.degrade import DegradeKind
from repsr.errors import UserError

if TYPE_CHECKING:  # the command imports its machinery when it runs (every repsr command starts faster)
    from repsr.models import BicubicPP
    from repsr.prune import Finetuner


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("prune", help="Bicubic++: global structured pruning by validation PSNR",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="Bicubic++ weights (repsr .safetensors, or the official .pth layout)")
    p.add_argument("--data", required=True, nargs="+", metavar="DIR", help="validation HR folders (or sets with HR/)")
    p.add_argument("--target-channels", type=int, required=True, help="final width of every prunable layer")
    p.add_argument("--target-mid-channels", type=int, default=None, help="final width of conv1 (default: same)")
    p.add_argument("--per-round", type=int, default=2, help="channels removed per costing round (default 2)")
    p.add_argument("--train", nargs="+", default=None, metavar="DIR", help="HR training folders (data.train)")
    p.add_argument("--finetune-iters", type=int, default=0, help="fine-tuning iterations after each round")
    p.add_argument("--drop-bias", action="store_true", help="stage 3: remove all biases, then fine-tune")
    p.add_argument("--bias-finetune-iters", type=int, default=0, help="fine-tuning iterations after --drop-bias")
    p.add_argument("--finetune-config", default=None, metavar="CONFIG",
                   help="the run config of every fine-tune (model section replaced by the net's); its full "
                        "run comes last")
    p.add_argument("--set", dest="overrides", nargs="+", action="append", default=[], metavar="KEY=VALUE",
                   help="overrides of the fine-tune config, as in repsr train")
    p.add_argument("--degradation", choices=get_args(DegradeKind), default=None,
                   help="how LR is made for validation and fine-tuning (data.degradation; default ntire: Pillow "
                        "bicubic + JPEG 90)")
    p.add_argument("--val-images", type=int, default=8, help="images per validation folder (default 8)")
    p.add_argument("--val-crop", type=int, default=96, help="LR centre-crop side of each validation image")
    p.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (train.lr; default 1e-4)")
    p.add_argument("--batch-size", type=int, default=None, help="train.batch_size (default 16)")
    p.add_argument("--patch-size", type=int, default=None, help="LR training patch side (train.patch_size; "
                   "default 48)")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run in the same fine-tune folder: the pruning is recomputed, each "
                        "fine-tune run continues from its checkpoint (a finished one is reused), the rest start")
    p.add_argument("--bgr", action="store_true", help="the weights expect BGR input (the official release)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output .safetensors")
    p.set_defaults(run=run)


def _load(args: argparse.Namespace) -> BicubicPP:
    from repsr.inference import load_runner
    from repsr.models import BicubicPP, model_config

    model = load_runner(args.weights, bgr=True if args.bgr else None, network=True)
    if not isinstance(model, BicubicPP):
        raise UserError(f"{args.weights}: repsr prune handles Bicubic++ nets, not '{model_config(model).arch}'")
    return model.float()


def _check(args: argparse.Namespace) -> None:
    if args.output.suffix != ".safetensors":
        raise UserError(f"{args.output}: output must be a .safetensors file")
    if (args.finetune_iters > 0 or args.bias_finetune_iters > 0) and not (args.train or args.finetune_config):
        raise UserError("fine-tuning needs --train DIR... (HR training images)")
    if args.per_round < 1 or args.val_crop < 8 or args.val_images < 1:
        raise UserError("--per-round and --val-images must be >= 1 and --val-crop >= 8")


def _shorthands(args: argparse.Namespace) -> dict[str, object]:
    """The shorthand flags as typed values of config keys: above the YAML (or recipe), below ``--set``."""
    values: dict[str, object] = {}
    if args.finetune_config is None:
        values["output"] = str(args.output.with_suffix("")) + "-finetune"
    if args.train:
        values["data.train"] = list(args.train)
    if args.lr is not None:
        values.update({"train.lr": args.lr, "optim.min_lr": args.lr / 10})
    if args.batch_size is not None:
        values["train.batch_size"] = args.batch_size
    if args.patch_size is not None:
        values["train.patch_size"] = args.patch_size
    if args.degradation is not None:
        values["data.degradation"] = args.degradation
    return values


def _finetuner(args: argparse.Namespace) -> Finetuner | None:
    """The one fine-tune config (None when nothing is fine-tuned); its output must be a fresh folder."""
    from repsr.prune import BICUBIC_PP_RECIPE, Finetuner
    from repsr.train.config import load_train_config

    if args.finetune_iters <= 0 and args.bias_finetune_iters <= 0 and not args.finetune_config:
        return None
    recipe = BICUBIC_PP_RECIPE if args.finetune_config is None else {}
    config = load_train_config(args.finetune_config, [o for group in args.overrides for o in group],
                               values={**recipe, **_shorthands(args)})
    if Path(config.output).exists() and not args.resume:
        raise UserError(f"{config.output}: exists; the fine-tune runs need a fresh folder (--set output=DIR), "
                        "or pass --resume to continue the run that wrote it")
    return Finetuner(config, round_iters=args.finetune_iters, resume=args.resume)


def _val_degradation(args: argparse.Namespace, tuner: Finetuner | None) -> DegradeKind:
    """The LR kind of the pruning validation: the fine-tunes' own, or --degradation (default ntire); fine-tunes
    on "mixed" LR leave it to --degradation, since the validation batch judges channels on one kind."""
    trained = tuner.config.data.degradation if tuner is not None else None
    if trained is None or trained == "mixed":
        return args.degradation or "ntire"
    return trained


def run(args: argparse.Namespace) -> int:
    from repsr.prune import PrunePlan, load_val_batch, prune_stages
    from repsr.prune.search import check_targets
    from repsr.prune.valset import bicubic_psnr
    from repsr.weights import save_model

    _check(args)
    model = _load(args)
    mid = args.target_mid_channels if args.target_mid_channels is not None else args.target_channels
    plan = PrunePlan(args.target_channels, mid, args.per_round, args.drop_bias, args.bias_finetune_iters,
                     args.finetune_config or None)
    try:
        check_targets(model, plan.targets)  # before minutes of reading training images
        tuner = _finetuner(args)
        if tuner is not None:
            tuner.prepare()
        degradation = _val_degradation(args, tuner)
        val = load_val_batch(args.data, model.config.scale, degradation, max_images=args.val_images,
                             crop=args.val_crop)
        print(f"validation: {len(val.names)} crops of {args.val_crop} px ({degradation} LR), RGB PSNR, no border "
              f"crop; torch bicubic (a = -0.75) scores {bicubic_psnr(val):.4f} dB")
        model, record = prune_stages(model, val, plan, tuner)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    save_model(model.eval(), args.output, metadata={"prune": record.to_json()})
    print(f"wrote {args.output} ({model.config.channels} channels, bias={model.config.bias})")
    return 0
