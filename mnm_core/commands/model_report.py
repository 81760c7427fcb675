"""`mnm model-report`: parameters and MACs of a preset, by component and by path."""

from __future__ import annotations

import argparse
import json

from mnm_core.config import PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model-report", help="parameters and multiply-accumulates of the model presets",
        description="Without --preset: every preset's fast-path parameters and MACs side by side. With "
                    "--preset: that preset's parameters and MACs at 256×256 and 640×512, split by component "
                    "(JSRL, REN, RIN, gate, synthesis) and fast path vs slow path.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="", help="one model preset in full")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mnm_core.report import format_comparison, format_report, model_report

    if args.preset:
        report = model_report(args.preset)
        print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
        return 0
    reports = [model_report(name) for name in PRESETS]
    print(json.dumps([r.as_dict() for r in reports], indent=2) if args.json else format_comparison(reports))
    return 0
