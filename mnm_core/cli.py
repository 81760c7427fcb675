"""The `mnm` command line: a thin layer of subcommands over the mnm_core API."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mnm_core import __version__
from mnm_core.commands import COMMAND_MODULES
from mnm_core.errors import MnmError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnm", description="Missing No More: pseudo-infrared inference and IR–visible fusion from RGB.")
    parser.add_argument("--version", action="version", version=f"mnm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mnm` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except MnmError as exc:
        logging.getLogger("mnm").error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
