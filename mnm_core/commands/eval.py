"""`mnm eval`: score a fusion method over a folder of pairs; CSV, JSON, fused images and an HTML report."""

from __future__ import annotations

import argparse
from typing import get_args

from mnm_core.backends import BACKENDS
from mnm_core.commands.options import api_defaults
from mnm_core.config import PipelinePrecision
from mnm_core.evaluation import METHODS, evaluate
from mnm_core.metrics import MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    default = api_defaults(evaluate)
    parser = subparsers.add_parser(
        "eval", help="evaluate a method over a folder of IR–visible pairs (CSV, JSON, HTML report)",
        description="Run METHOD on every pair of DATA (DATA/vis/NAME + DATA/ir/NAME), score it with the VIFB "
                    "metrics, score the pseudo-IR (model only) and the trivial guesses visible Y and 1 − Y by "
                    "PSNR, SSIM and hotspot_auc, and write OUT/per_image.csv, OUT/summary.json, OUT/fused/, "
                    "OUT/pseudo_ir/ and OUT/report.html. Pairs that cannot be read are skipped with a reason.")
    parser.add_argument("--data", required=True, help="folder with vis/ and ir/ subfolders")
    parser.add_argument("--method", required=True, choices=METHODS,
                        help="visible: the visible image; real-ir: max(Y, real IR) fusion (upper bound); "
                             "model: the mnm pipeline on the visible image only")
    parser.add_argument("--checkpoint", help="checkpoint for --method model (default: the embedded one)")
    parser.add_argument("--text-encoder", default=default["text_encoder"], choices=("auto", "minilm", "none"),
                        help="language conditioning for --method model: auto = the encoder the checkpoint was "
                             "trained with, computed for every image; none = identity modulation")
    parser.add_argument("--backend", default=default["backend"], choices=BACKENDS,
                        help="fast-path backend for --method model (%(default)s: exact at any size)")
    parser.add_argument("--precision", default=default["precision"], choices=get_args(PipelinePrecision),
                        help="fast-path precision for --method model; auto = what this machine runs by default "
                             "(mnm_core.machine)")
    parser.add_argument("--max-side", type=int, default=None, metavar="PX",
                        help="longest side the fast path runs at for --method model (0 = each image's own "
                             "size; default: the pipeline's, PipelineConfig.max_side)")
    parser.add_argument("--mode", choices=MODES, default=default["mode"], help="metric mode (%(default)s)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--no-baselines", action="store_true", help="do not score the visible/real-ir baselines")
    parser.add_argument("--no-report", action="store_true", help="skip thumbnails, chart and report.html")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mnm_core.errors import ConfigError
    from mnm_core.evaluation import FUSED_KEYS, format_table
    from mnm_core.guesses import PSEUDO_IR_SCORES, guess_means

    if args.checkpoint and args.method != "model":
        raise ConfigError(f"--checkpoint only applies to --method model, not {args.method}")
    result = evaluate(args.data, args.method, args.out, mode=args.mode, checkpoint=args.checkpoint,
                      baselines=not args.no_baselines, progress=not args.no_progress, report=not args.no_report,
                      text_encoder=args.text_encoder, backend=args.backend, precision=args.precision,
                      max_side=args.max_side)
    print(format_table(result.means, FUSED_KEYS))
    print("\n" + format_table(guess_means(result.means[args.method]), PSEUDO_IR_SCORES))
    print(f"\n{len(result.rows)} images, {len(result.skipped)} skipped (mode {result.mode}); "
          f"summary: {result.summary_path}" + (f", report: {result.report_path}" if result.report_path else ""))
    return 0
