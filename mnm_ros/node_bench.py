"""The node's own per-frame cost (conversions and publishing), inference excluded (`mnm node-bench`).

Times, per frame: turning an input message into the Fuser's array for each encoding, building the two
output messages, and publishing them to a subscriber in another process (through the large-data Fast
DDS profile, as the node runs).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from mnm_core.errors import ConfigError

SUBSCRIBER = """
import sys, rclpy
from sensor_msgs.msg import Image
from mnm_ros.qos import make_qos
rclpy.init()
node = rclpy.create_node("mnm_bench_sink")
for topic in ("pseudo_ir", "fused"):
    node.create_subscription(Image, "/mnm_bench/" + topic, lambda msg: None, make_qos())
try:
    rclpy.spin(node)
except BaseException:
    pass
"""
"""A subscriber process that takes the published frames, so publishing pays the real transport cost."""


def _time(stage: Callable[[], object], repeats: int) -> tuple[float, float]:
    stage()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        stage()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), float(np.percentile(times, 90))


def bench_node(size: tuple[int, int] = (512, 640), repeats: int = 100) -> list[tuple[str, float, float]]:
    """(stage, median ms, p90 ms) per stage at size (height, width), the last row the total overhead of an
    rgb8 frame (its p90 NaN). ConfigError when the subscriber process does not connect."""
    import rclpy
    from sensor_msgs.msg import Image

    from mnm_ros.client import stop_node
    from mnm_ros.conversions import (
        array_to_compressed,
        array_to_image,
        compressed_to_frame,
        fused_to_image,
        image_to_frame,
    )
    from mnm_ros.qos import large_data_environment, make_qos

    height, width = size
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    gray = rgb[:, :, 0].copy()
    inputs = {
        "rgb8": array_to_image(rgb, "rgb8"),
        "bgr8": array_to_image(rgb, "bgr8"),
        "rgba8": array_to_image(np.dstack([rgb, gray]), "rgba8"),
        "mono8": array_to_image(gray, "mono8"),
        "mono16": array_to_image(gray.astype(np.uint16) * 257, "mono16"),
    }
    yuv = array_to_image(rng.integers(0, 256, (height, width * 2), dtype=np.uint8), "mono8")
    yuv.encoding, yuv.width = "yuv422", width
    inputs["yuv422"] = yuv
    jpeg = array_to_compressed(rgb, "jpeg")

    rows: list[tuple[str, float, float]] = []
    for encoding, msg in inputs.items():
        rows.append((f"in: {encoding} → array", *_time(lambda msg=msg: image_to_frame(msg), repeats)))
    rows.append((f"in: jpeg ({len(jpeg.data) // 1024} KB) decode", *_time(lambda: compressed_to_frame(jpeg),
                                                                         repeats)))
    frame = image_to_frame(inputs["rgb8"])
    outputs = lambda: (array_to_image(gray, "mono8"), fused_to_image(rgb, frame))  # noqa: E731
    rows.append(("out: pseudo_ir + fused messages", *_time(outputs, repeats)))

    env = large_data_environment()
    env.update(ROS_DOMAIN_ID=str(random.randint(1, 100)), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.update(env)
    sink = subprocess.Popen([sys.executable, "-c", SUBSCRIBER], env=env)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("mnm_bench_source", context=context)
        publishers = [node.create_publisher(Image, f"/mnm_bench/{name}", make_qos()) for name in ("pseudo_ir", "fused")]
        deadline = time.monotonic() + 30.0
        while any(p.get_subscription_count() == 0 for p in publishers) and time.monotonic() < deadline:
            time.sleep(0.1)
        if any(p.get_subscription_count() == 0 for p in publishers):
            raise ConfigError("the benchmark's subscriber process did not connect within 30 s")
        ir_msg, fused_msg = outputs()

        def publish() -> None:
            publishers[0].publish(ir_msg)
            publishers[1].publish(fused_msg)

        rows.append(("publish pseudo_ir + fused (1 subscriber)", *_time(publish, repeats)))
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
        stop_node(sink)

    in_median = next(r[1] for r in rows if r[0].startswith("in: rgb8"))
    out_median = sum(r[1] for r in rows[-2:])
    rows.append(("node overhead per rgb8 frame (in + out + publish)", in_median + out_median, float("nan")))
    return rows


def format_rows(rows: list[tuple[str, float, float]], size: tuple[int, int], repeats: int) -> str:
    """`bench_node`'s rows as a table."""
    label_width = max(len(r[0]) for r in rows)
    lines = [f"node overhead at {size[1]}×{size[0]}, {repeats} repeats (ms; inference excluded)",
             f"{'stage':<{label_width}}  {'median':>8}  {'p90':>8}"]
    for label, median, p90 in rows:
        p90_text = "" if np.isnan(p90) else f"{p90:8.3f}"
        lines.append(f"{label:<{label_width}}  {median:8.3f}  {p90_text:>8}")
    return "\n".join(lines)


__all__ = ["bench_node", "format_rows"]
