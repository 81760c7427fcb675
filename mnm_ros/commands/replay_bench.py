"""`mnm replay-bench BAG`: repeated live replays through fuse_node, variants interleaved
(`mnm_ros.replay_bench`)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from mnm_core.commands.options import api_defaults
from mnm_core.errors import ConfigError
from mnm_ros.replay_bench import DEFAULT_VARIANTS, format_table, parse_variant, run_replay_bench, summarize


def _variant_type(text: str) -> tuple[str, tuple[str, ...]]:
    try:
        return parse_variant(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    default = api_defaults(run_replay_bench)
    defaults_text = " ".join(f"{name}={','.join(items)}" for name, items in DEFAULT_VARIANTS.items())
    parser = subparsers.add_parser(
        "replay-bench", help="end-to-end latency of fuse_node under live bag replay, variants repeated and "
                             "interleaved",
        description="For each round, for each variant: start fuse_node (--params, then the variant's "
                    "overrides; input remapped to --topic), replay the topic with `mnm bag-play` at the bag's "
                    "timing, stop the node. Prints, per run, the frames published and the median and p99 "
                    "end-to-end latency on /mnm/fused, then per variant the medians over the rounds and the p99 "
                    "against the first variant. Rounds interleave the variants (A B A B ...) so that a busy "
                    "spell of the machine falls on all of them.")
    parser.add_argument("bag", help="bag folder, or a single .db3/.mcap file")
    parser.add_argument("--topic", default=default["topic"], help="image topic to replay (%(default)s)")
    parser.add_argument("--repeats", type=int, default=default["repeats"], help="rounds (%(default)s)")
    parser.add_argument("--params", default=default["params_file"], metavar="YAML",
                        help="fuse_node params file (default: the shipped config/fuse.yaml)")
    parser.add_argument("--variant", dest="variants", action="append", type=_variant_type,
                        metavar="NAME=KEY:=VALUE[,KEY:=VALUE...]",
                        help="a variant: ROS parameter overrides over --params ('NAME=' for none); repeat for "
                             f"more; the first is the baseline (default: {defaults_text})")
    parser.add_argument("--out", default=default["out"], metavar="DIR",
                        help="keep each run's node log and recording here, and replay_bench.json "
                             "(default: a temporary folder)")
    parser.add_argument("--domain-id", type=int, default=default["domain_id"],
                        help="ROS_DOMAIN_ID of the node and the player (default: a random one)")
    parser.add_argument("--wait", type=float, default=default["wait_s"],
                        help="seconds bag-play waits for the node to be up (%(default)s)")
    parser.add_argument("--settle", type=float, default=default["settle_s"],
                        help="seconds bag-play waits for late outputs after the last frame (%(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    variants = None
    if args.variants:
        variants = dict(args.variants)
        if len(variants) != len(args.variants):
            raise ConfigError("--variant names must be unique")
    load_before = os.getloadavg()[0]
    runs = run_replay_bench(args.bag, variants, repeats=args.repeats, topic=args.topic, params_file=args.params,
                            out=args.out, domain_id=args.domain_id, wait_s=args.wait, settle_s=args.settle)
    summaries = summarize(runs)
    load_after = os.getloadavg()[0]
    print(f"{args.bag} ({args.topic}), {args.repeats} rounds; load average (1 min) {load_before:.1f} before, "
          f"{load_after:.1f} after")
    print(format_table(runs, summaries))
    if args.out:
        record = {"bag": str(args.bag), "topic": args.topic, "params": args.params or "the shipped config/fuse.yaml",
                  "variants": dict(variants or DEFAULT_VARIANTS), "load_avg_1m": [load_before, load_after],
                  "runs": [asdict(r) for r in runs], "summary": [asdict(s) for s in summaries]}
        (Path(args.out) / "replay_bench.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"runs, node logs and recordings: {args.out}")
    return 0
