"""`mnm make-bag`: a ROS 2 bag from a folder of IR–visible pairs or from a video file."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-bag", help="build a ROS 2 bag (sqlite3 or mcap) from a folder of pairs or a video",
        description="Write one visible (/camera/image_raw) and one thermal (/thermal/image_raw) message per pair of "
                    "DATA (DATA/vis/NAME + DATA/ir/NAME, sorted by name), or one visible message per frame of "
                    "VIDEO, stamped at --fps. Raw Image messages keep the pixels exactly (the frames `mnm eval` "
                    "scores); --compressed writes CompressedImage (JPEG is lossy).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="folder with vis/ and ir/ subfolders")
    source.add_argument("--video", help="video file readable by OpenCV (visible topic only)")
    parser.add_argument("--out", required=True, help="bag to create (a new folder)")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="bag storage format")
    parser.add_argument("--fps", type=float, help="frame rate of the stamps (default: 10 for --data, the video's "
                                                  "own for --video)")
    parser.add_argument("--encoding", choices=("rgb8", "bgr8"), default="rgb8", help="encoding of colour Image "
                                                                                      "messages")
    parser.add_argument("--compressed", action="store_true", help="write sensor_msgs/CompressedImage")
    parser.add_argument("--compressed-format", choices=("jpeg", "png"), default="jpeg",
                        help="format of --compressed images (png is lossless)")
    parser.add_argument("--topic", default="/camera/image_raw", help="visible topic")
    parser.add_argument("--ir-topic", default="/thermal/image_raw", help="thermal topic (--data only)")
    parser.add_argument("--max-frames", type=int, help="stop after this many video frames")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mnm_core.bags.make_bag import make_bag_from_pairs, make_bag_from_video

    common = {"storage": args.storage, "encoding": args.encoding, "compressed": args.compressed,
              "compressed_format": args.compressed_format, "vis_topic": args.topic, "progress": not args.no_progress}
    if args.data:
        made = make_bag_from_pairs(args.data, args.out, fps=args.fps or 10.0, ir_topic=args.ir_topic, **common)
    else:
        made = make_bag_from_video(args.video, args.out, fps=args.fps, max_frames=args.max_frames, **common)
    counts = ", ".join(f"{topic}: {count}" for topic, count in made.counts.items())
    print(f"wrote {made.path} ({args.storage}; {counts})" + (f"; {len(made.skipped)} pairs skipped"
                                                             if made.skipped else ""))
    return 0
