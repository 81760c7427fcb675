"""`mnm bench`: fast-path latency table, backend × precision × preset × resolution (`mnm_core.benchmark`)."""

from __future__ import annotations

import argparse
import json
import typing

from mnm_core.backends import BACKENDS
from mnm_core.benchmark import format_table, machine, run_benchmark
from mnm_core.commands.options import api_defaults, size_type
from mnm_core.config import PRESETS, Precision


def register(subparsers: argparse._SubParsersAction) -> None:
    default = api_defaults(run_benchmark)
    parser = subparsers.add_parser(
        "bench", help="latency, frames/s and memory of the fast path per backend, precision, preset, size",
        description="Time the fast path (y, gamma, beta -> pseudo-IR, fused Y) after warm-up: median and p99 "
                    "latency, frames/s and peak memory. Uses the embedded default checkpoint for its preset, "
                    "else an untrained model with a random dictionary (timing does not depend on the weights). "
                    "Slow rows stop after --budget-s seconds of timed runs; the 'runs' column says warm-up+timed.")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=default["backends"],
                        help="default: torch and onnxruntime (+ tensorrt on cuda)")
    parser.add_argument("--precisions", nargs="+", choices=typing.get_args(Precision), default=default["precisions"],
                        help="default: fp32 on cpu, fp32 and fp16 on cuda; rows a backend cannot run are skipped "
                             "with a note (int8: onnxruntime only, the shipped file of these weights or one "
                             "calibrated on the training sets; bf16: torch only)")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=list(default["presets"]),
                        help="default: %(default)s (the shipped preset); paper at 1280x1024 takes minutes per pass "
                             "on a CPU")
    parser.add_argument("--sizes", nargs="+", type=size_type, default=default["sizes"], metavar="WxH",
                        help="resolutions WIDTHxHEIGHT (multiples of 8); default "
                             + " ".join(f"{w}x{h}" for h, w in default["sizes"]))
    parser.add_argument("--repeats", type=int, default=default["repeats"], help="timed runs per row (at most)")
    parser.add_argument("--warmup", type=int, default=default["warmup"],
                        help="warm-up runs per row (fewer when one is slow)")
    parser.add_argument("--budget-s", type=float, default=default["budget_s"],
                        help="stop timing a row after this many seconds (%(default)s)")
    parser.add_argument("--device", default=default["device"], help="cpu, cuda or cuda:N (%(default)s)")
    parser.add_argument("--threads", type=int, default=default["threads"],
                        help="CPU threads for torch and onnxruntime (default: their own, usually all cores)")
    parser.add_argument("--cache-dir", default=default["cache_dir"],
                        help="where exports/engines are cached (default ~/.cache/mnm)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import os
    import time

    load_before = round(os.getloadavg()[0], 1)
    start = time.perf_counter()
    results, notes = run_benchmark(args.backends, args.precisions, args.presets, args.sizes, repeats=args.repeats,
                                   warmup=args.warmup, budget_s=args.budget_s, device=args.device,
                                   cache_dir=args.cache_dir, threads=args.threads)
    elapsed = time.perf_counter() - start
    info = {**machine(args.device), "threads": args.threads or "default", "load_avg_1m_before": load_before}
    if args.json:
        print(json.dumps({"machine": info, "notes": notes, "elapsed_s": round(elapsed, 1),
                          "results": [r.as_dict() for r in results]}, indent=2))
    else:
        print(", ".join(f"{k} {v}" for k, v in info.items()))
        print(format_table(results))
        for note in notes:
            print(f"note: {note}")
        print(f"total {elapsed:.0f} s")
    return 0 if results else 1
