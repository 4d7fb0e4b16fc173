"""The ``repsr`` command: one sub-command per module in :mod:`repsr.commands`.

Each command module exposes ``add_parser(subparsers)``, which registers its parser and sets
``run`` (a function of the parsed args returning an exit code). User errors (:class:`UserError`)
become ``error: <message>`` on stderr and exit code 2; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from repsr.errors import UserError

# Sub-commands, in the order `repsr --help` lists them.
COMMANDS = ("upscale", "eval", "train", "merge", "quantize", "bench", "bench-train", "prune", "study", "ntire")


def build_parser() -> argparse.ArgumentParser:
    from repsr import __version__

    parser = argparse.ArgumentParser(prog="repsr", description="Re-parameterizable, deployable super-resolution.")
    parser.add_argument("--version", action="version", version=f"repsr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"repsr.commands.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `repsr eval ... | head`: the reader left; stop quietly, as Unix tools do (and keep Python's
        # final flush of stdout from raising again)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
