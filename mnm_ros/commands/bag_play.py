"""`mnm bag-play`: replay a bag on live ROS 2 topics and record the fusion node's outputs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bag-play", help="publish a bag's messages on live ROS 2 topics; record the node's outputs and latency",
        description="Publish the messages of BAG (sqlite3 or mcap) with rclpy at the bag's timing scaled by "
                    "--rate, headers unchanged. With --record DIR, subscribe to the node's outputs and write "
                    "DIR/play_summary.json (frames received, drops, end-to-end latency by header stamp) and "
                    "DIR/latency.csv and DIR/latency.png. Start the node first, e.g. "
                    "`fuse_node --ros-args -r image:=/camera/image_raw`.")
    parser.add_argument("bag", help="bag folder, or a single .db3/.mcap file")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (2 = twice as fast)")
    parser.add_argument("--clock", action="store_true", help="publish /clock (bag time) for use_sim_time nodes")
    parser.add_argument("--topics", nargs="+", help="topics to publish (default: all)")
    parser.add_argument("--record", metavar="DIR", help="record the node's outputs and write a summary here")
    parser.add_argument("--input-topic", default="/camera/image_raw",
                        help="the node's input topic: latency is measured from its messages")
    parser.add_argument("--outputs", nargs="+", default=["/mnm/fused", "/mnm/pseudo_ir"],
                        help="output topics to record")
    parser.add_argument("--wait-for", nargs="+", metavar="TOPIC",
                        help="topics (or /clock) that must have a subscriber before playing (default: --input-topic)")
    parser.add_argument("--wait", type=float, default=10.0,
                        help="seconds to wait for the node (subscriber and publishers) before playing")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait for late outputs at the end")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mnm_ros.bag_play import play_bag

    result = play_bag(args.bag, topics=args.topics, rate=args.rate, clock=args.clock, record_dir=args.record,
                      input_topic=args.input_topic, outputs=args.outputs, wait_s=args.wait, settle_s=args.settle,
                      wait_for=args.wait_for)
    counts = ", ".join(f"{topic}: {count}" for topic, count in result.published.items())
    print(f"published in {result.seconds:.1f} s: {counts}")
    if result.damage:
        print(f"WARNING: {result.damage} — played up to the damage")
    if result.record is not None:
        for topic, stats in result.record["outputs"].items():  # type: ignore[union-attr]
            latency = stats["latency_ms"]
            timing = "" if latency["mean"] is None else (f"; latency mean {latency['mean']:.1f} ms, "
                                                         f"p90 {latency['p90']:.1f} ms, max {latency['max']:.1f} ms")
            print(f"{topic}: received {stats['received']} of {result.record['sent']}, dropped {stats['dropped']}"
                  + timing)
        print(f"summary: {args.record}/play_summary.json")
    return 0
