"""Argument types shared by the command modules of every layer."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable

from mnm_core.config import parse_size
from mnm_core.errors import ConfigError


def size_type(text: str) -> tuple[int, int]:
    """argparse type of WxH options: `mnm_core.config.parse_size` → (height, width), a bad size a usage error."""
    try:
        return parse_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def api_defaults(function: Callable) -> dict[str, object]:
    """The keyword defaults of the API function a command wraps: the command's option defaults, so that
    they live in one place (the function's typed signature)."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items() if p.default is not p.empty}
