"""The `mnm` entry point: help on every subcommand, and model-report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mnm_core.cli import build_parser, main
from mnm_core.config import PRESETS


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: mnm" in capsys.readouterr().out


def test_model_report_json_keys(capsys):
    assert main(["model-report", "--preset", "tiny", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params_total"] > 0
    assert set(report["fast_path_macs"]) == {"256x256", "640x512"}
    assert report["fast_path_macs"]["640x512"] > report["fast_path_macs"]["256x256"] > 0


def test_model_report_compares_every_preset(capsys):
    assert main(["model-report"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "small" in line and "fast" in line)
    assert header.split() == list(PRESETS)
    ratio = next(line for line in out.splitlines() if line.startswith("× small's MACs")).split()[-len(PRESETS):]
    assert dict(zip(PRESETS, map(float, ratio)))["small"] == 1.0


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "mnm_core.cli", "model-report", "--preset", "small"],
                         capture_output=True, text=True, check=True).stdout
    assert "fast path" in out and "rin" in out
