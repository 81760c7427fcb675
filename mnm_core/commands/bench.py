"""`mnm bench`: fast-path latency table, backend × precision × preset × resolution."""

from __future__ import annotations

import argparse
import json

from mnm_core.backends import BACKENDS
from mnm_core.commands import size_type
from mnm_core.config import PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="latency, frames/s and memory of the fast path per backend, precision, preset, size",
        description="Time the fast path (y, gamma, beta -> pseudo-IR, fused Y) after warm-up: median and p99 "
                    "latency, frames/s and peak memory. Uses the embedded default checkpoint for its preset, "
                    "else an untrained model with a random dictionary (timing does not depend on the weights). "
                    "Slow rows stop after --budget-s seconds of timed runs; the 'runs' column says warm-up+timed.")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=None,
                        help="default: torch and onnxruntime (+ tensorrt on cuda)")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "fp16"), default=None,
                        help="default: fp32 on cpu, fp32 and fp16 on cuda")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=["small"],
                        help="default: small (the shipped preset); paper at 1280x1024 takes minutes per pass on a CPU")
    parser.add_argument("--sizes", nargs="+", type=size_type, default=None, metavar="WxH",
                        help="resolutions WIDTHxHEIGHT (multiples of 8); default 320x256 640x512 1280x1024")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per row (at most)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per row (fewer when one is slow)")
    parser.add_argument("--budget-s", type=float, default=10.0, help="stop timing a row after this many seconds")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch and onnxruntime (default: their own, usually all cores)")
    parser.add_argument("--cache-dir", default="", help="where exports/engines are cached (default ~/.cache/mnm)")
    parser.set_defaults(run=run)


def machine(device: str) -> dict:
    """What the numbers were measured on."""
    import os
    import platform

    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 1),
            "torch_default_threads": torch.get_num_threads(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def run(args: argparse.Namespace) -> int:
    import os
    import time

    from mnm_core.benchmark import SIZES, format_table, run_benchmark

    cuda = args.device.startswith("cuda")
    backends = args.backends or (["torch", "onnxruntime", "tensorrt"] if cuda else ["torch", "onnxruntime"])
    precisions = args.precisions or (["fp32", "fp16"] if cuda else ["fp32"])
    load_before = round(os.getloadavg()[0], 1)
    start = time.perf_counter()
    results, notes = run_benchmark(backends, precisions, args.presets, args.sizes or SIZES, repeats=args.repeats,
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
