"""`mnm demo --out DIR`: the fusion node on the embedded default model, fed sample frames over ROS 2
(`mnm_ros.demo.run_demo`)."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

from mnm_core.commands.options import api_defaults, size_type
from mnm_core.config import BackendName, EncoderName
from mnm_ros.demo import run_demo


def register(subparsers: argparse._SubParsersAction) -> None:
    default = api_defaults(run_demo)
    parser = subparsers.add_parser(
        "demo", help="run the ROS 2 fusion node on sample frames and save what it publishes",
        description="Start fuse_node (embedded default model), publish sample frames to it over ROS 2 and write "
                    "the fused and pseudo-IR images, a contact sheet and summary.json to --out.")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--checkpoint", default=default["checkpoint"],
                        help="checkpoint (default: the embedded default model)")
    parser.add_argument("--backend", default=default["backend"], choices=typing.get_args(BackendName),
                        help="inference backend (falls back to torch if unavailable); default: %(default)s")
    parser.add_argument("--text-encoder", default=default["text_encoder"], choices=typing.get_args(EncoderName),
                        help="text encoder (falls back to none if it fails); default: %(default)s")
    parser.add_argument("--frames", type=int, default=default["frames"], help="frames to send (%(default)s)")
    parser.add_argument("--rate", type=float, default=default["rate"], help="frames per second (%(default)s)")
    height, width = default["size"]
    parser.add_argument("--size", type=size_type, default=default["size"], metavar="WxH",
                        help=f"frame size (default {width}x{height})")
    parser.add_argument("--domain-id", type=int, default=default["domain_id"],
                        help="ROS_DOMAIN_ID (default: a random one)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    summary = run_demo(args.out, checkpoint=args.checkpoint, backend=args.backend, text_encoder=args.text_encoder,
                       frames=args.frames, rate=args.rate, size=args.size, domain_id=args.domain_id)
    width_key = max(len(k) for k in summary)
    print("\n".join(f"{k:<{width_key}}  {v}" for k, v in summary.items()))
    print(f"wrote {summary['frames_received']} fused and pseudo-IR images, contact_sheet.png and summary.json "
          f"to {args.out}")
    return 0 if summary["frames_received"] else 1
