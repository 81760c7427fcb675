"""`mnm bag-eval`: evaluate the frame pipeline offline on a ROS 2 bag."""

from __future__ import annotations

import argparse
import typing

from mnm_core.bags.evaluate import evaluate_bag
from mnm_core.commands.options import api_defaults
from mnm_core.config import BackendName
from mnm_core.metrics import MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    default = api_defaults(evaluate_bag)
    parser = subparsers.add_parser(
        "bag-eval", help="run the pipeline on a bag's image topic: new bag, per-frame CSV, summary, HTML report",
        description="Read BAG (sqlite3 or mcap; Image or CompressedImage on TOPIC), run the pipeline on every "
                    "(n-th) frame and score it: AG/EI/EN/SF on every frame; CE, Qcb and PSNR/SSIM/hotspot_auc of "
                    "the pseudo-IR and of the trivial guesses (visible Y, 1 − Y) where a thermal frame of "
                    "--ir-topic lies within --tolerance-ms. Writes OUT/bag (the input topics "
                    "plus /mnm/pseudo_ir and /mnm/fused, same stamps), OUT/per_frame.csv, OUT/summary.json and "
                    "OUT/report.html. A damaged bag is evaluated up to the damage.")
    parser.add_argument("bag", help="bag folder, or a single .db3/.mcap file")
    parser.add_argument("--topic", required=True, help="visible image topic, e.g. /camera/image_raw")
    parser.add_argument("--ir-topic", help="thermal image topic used only for scoring, e.g. /thermal/image_raw")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--every", type=int, default=default["every"],
                        help="process every N-th visible frame (%(default)s)")
    parser.add_argument("--checkpoint", help="checkpoint (default: the embedded one)")
    parser.add_argument("--backend", choices=typing.get_args(BackendName), default=default["backend"],
                        help="inference backend (%(default)s)")
    parser.add_argument("--text-encoder", default=default["text_encoder"], choices=("auto", "minilm", "none"),
                        help="language conditioning, as in `mnm eval`: auto = the encoder the checkpoint was "
                             "trained with, computed for every frame; none = identity modulation")
    parser.add_argument("--mode", choices=MODES, default=default["mode"], help="metric mode (%(default)s)")
    parser.add_argument("--tolerance-ms", type=float, default=default["tolerance_ms"],
                        help="largest visible–thermal header stamp difference that still pairs (ms; %(default)s)")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), help="storage of OUT/bag (default: the input's)")
    parser.add_argument("--no-report", action="store_true", help="skip the plots and report.html")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mnm_core.evaluation import format_table
    from mnm_core.guesses import PSEUDO_IR_SCORES, guess_means
    from mnm_core.metrics import METRIC_KEYS

    result = evaluate_bag(args.bag, args.out, args.topic, args.ir_topic, every=args.every, checkpoint=args.checkpoint,
                          backend=args.backend, mode=args.mode, tolerance_ms=args.tolerance_ms, storage=args.storage,
                          progress=not args.no_progress, report=not args.no_report, text_encoder=args.text_encoder)
    summary = result.summary
    print(format_table({"model": summary["mean"]}, METRIC_KEYS))  # type: ignore[dict-item]
    print("\n" + format_table(guess_means(summary["mean"]), PSEUDO_IR_SCORES))  # type: ignore[arg-type]
    latency = summary["latency_ms"]
    print(f"\n{summary['frames']} of {summary['frames_in_bag']} frames evaluated, {summary['paired']} with a thermal "
          f"partner; pipeline {latency['mean']:.1f} ms/frame mean, p90 {latency['p90']:.1f} ms")  # type: ignore[index]
    if summary["damage"]:
        print(f"WARNING: {summary['damage']} — evaluated up to the damage")
    print(f"new bag: {result.out_bag}; summary: {result.summary_path}"
          + (f"; report: {result.report_path}" if result.report_path else ""))
    return 0
