"""``repsr train CONFIG [--set key=value ...] [--resume] [--profile]``: train a model from a YAML config.

Under ``torchrun --nproc_per_node N -m repsr train CONFIG`` the same command runs DDP.
"""

from __future__ import annotations

import argparse
import logging


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (RepSR recipe with the BN switch)",
        description="Train a super-resolution model from a YAML config (see configs/ and docs/training.md).",
    )
    p.add_argument("config", help="YAML run config, e.g. configs/repsr.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set model.channels=16 --set train.iters=1000 "
                        "(values parsed as YAML; repeatable; several may follow one --set)", nargs="+")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints/latest.safetensors "
                   "(or the latest.pt of earlier versions)")
    p.add_argument("--profile", action="store_true", help="print it/s and the share of time spent waiting for data")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from repsr.train.config import load_train_config
    from repsr.train.loop import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = [item for group in args.overrides for item in group]
    config = load_train_config(args.config, overrides)
    train(config, resume=args.resume, profile=args.profile)
    return 0
