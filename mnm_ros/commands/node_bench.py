"""`mnm node-bench`: the node's own per-frame cost, inference excluded (`mnm_ros.node_bench`)."""

from __future__ import annotations

import argparse

from mnm_core.commands.options import api_defaults, size_type
from mnm_ros.node_bench import bench_node, format_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    default = api_defaults(bench_node)
    parser = subparsers.add_parser(
        "node-bench", help="per-frame overhead of the ROS node (conversion + publish), inference excluded",
        description="Time message → array conversion per encoding, output message building and publishing.")
    height, width = default["size"]
    parser.add_argument("--size", type=size_type, default=default["size"], metavar="WxH",
                        help=f"frame size (default {width}x{height})")
    parser.add_argument("--repeats", type=int, default=default["repeats"],
                        help="timed repetitions per stage (%(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(format_rows(bench_node(args.size, args.repeats), args.size, args.repeats))
    return 0
