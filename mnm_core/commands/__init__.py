"""Subcommands of the `mnm` command line, one module each.

A command module defines `register(subparsers)`, which adds its parser and sets `run`, a function
taking the parsed arguments and returning an exit code. Modules import heavy dependencies inside
`run`, so `mnm --help` stays fast.
"""

import argparse

from mnm_core.config import parse_size
from mnm_core.errors import ConfigError

COMMAND_MODULES = [
    "mnm_core.commands.model_report",
    "mnm_core.commands.metrics",
    "mnm_core.commands.eval",
    "mnm_core.commands.make_bag",
    "mnm_core.commands.bag_eval",
    "mnm_ros.commands.bag_play",
    "mnm_core.commands.export",
    "mnm_core.commands.bench",
    "mnm_core.commands.text_bench",
    "mnm_ros.commands.demo",
    "mnm_ros.commands.node_bench",
]
"""Import paths of the command modules, in the order `mnm --help` lists them."""


def size_type(text: str) -> tuple[int, int]:
    """argparse type of WxH options: `mnm_core.config.parse_size` → (height, width), a bad size a usage error."""
    try:
        return parse_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
