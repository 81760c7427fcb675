"""The `mnm` command line: a thin layer of subcommands over the API of each layer.

mnm_core's own commands are built in; each layer above it (the ROS layer, ...) registers a tuple of
command modules under the `mnm.commands` entry-point group (setup.py), taken in entry-point name order,
so mnm_core knows nothing of the layers above it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys

from mnm_core import __version__
from mnm_core.errors import MnmError

ENTRY_POINT_GROUP = "mnm.commands"


def command_modules() -> list:
    """mnm_core's own command modules, then those other installed layers (mnm_ros) registered in the
    entry-point group, by entry-point name. The core's own need no package metadata, so
    `python -m mnm_core.cli` also works from a source tree that was never installed (the GPU machine)."""
    from mnm_core.commands import COMMANDS

    points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)
    return [*COMMANDS, *(module for point in points for module in point.load())]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnm", description="Missing No More: pseudo-infrared inference and IR–visible fusion from RGB.")
    parser.add_argument("--version", action="version", version=f"mnm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules():
        module.register(subparsers)
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
