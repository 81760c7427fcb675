"""`mnm model-report`: parameters and MACs of a preset, by component and by path."""

from __future__ import annotations

import argparse
import json

from mnm_core.config import PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model-report", help="parameters and multiply-accumulates of a model preset",
        description="Print parameters and MACs at 256×256 and 640×512, split by component "
                    "(JSRL, REN, RIN, gate, synthesis) and fast path vs slow path.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small", help="model preset")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mnm_core.report import format_report, model_report

    report = model_report(args.preset)
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    return 0
