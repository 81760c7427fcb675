"""Live replay of a bag into ROS 2 (`mnm bag-play`), and a recorder of the fusion node's outputs.

The player publishes each message's stored CDR bytes unchanged (headers and stamps as recorded) at the
bag's own timing scaled by `rate`, optionally with /clock for nodes running with use_sim_time. The
recorder subscribes to the node's outputs and matches each output's header stamp to the moment the
input with that stamp was published: end-to-end latency (transport + conversion + inference) measured
in this one process, received frames, and drops (inputs whose output never came). Bags are read by
`mnm_core.bags` (rosbags), so no ROS installation is needed beyond rclpy.
"""

from __future__ import annotations

import csv
import importlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from mnm_core.bags.reader import BagReader, RawMessage
from mnm_core.errors import DataError

LOGGER = logging.getLogger(__name__)

OUTPUT_TOPICS = ("/mnm/fused", "/mnm/pseudo_ir")
CLOCK_PERIOD_S = 0.01
"""/clock is published at least this often (s) while waiting for the next message."""
SPINNER_JOIN_S = 5.0
"""How long shutdown waits for the spinning thread to return."""


def message_class(msgtype: str) -> type:
    """'pkg/msg/Name' → the rclpy message class; DataError when the package is not installed."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"cannot publish {msgtype}: its Python message package {package!r} is not installed "
                        "(pip package ros-<pkg> or a sourced ROS 2)") from exc


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    data = np.asarray(values)
    return {"mean": float(data.mean()), "p50": float(np.percentile(data, 50)),
            "p90": float(np.percentile(data, 90)), "p99": float(np.percentile(data, 99)), "max": float(data.max())}


@dataclass
class Recorder:
    """Subscribes to output topics and times each output against the input published with its stamp."""

    node: Node
    topics: Sequence[str] = OUTPUT_TOPICS
    sent: dict[int, float] = field(default_factory=dict)
    """Input header stamp (ns) → monotonic publish time (s)."""
    received: dict[str, dict[int, float]] = field(default_factory=dict)
    """Output topic → stamp (ns) → monotonic receive time (s) of its first arrival."""
    duplicates: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from sensor_msgs.msg import Image

        self._lock = threading.Lock()
        self._subscriptions = []
        for topic in self.topics:
            self.received[topic], self.duplicates[topic] = {}, 0
            self._subscriptions.append(self.node.create_subscription(
                Image, topic, lambda msg, t=topic: self._on_output(t, msg), qos_profile_sensor_data))

    def _on_output(self, topic: str, msg: object) -> None:
        now = time.monotonic()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec  # type: ignore[attr-defined]
        with self._lock:
            if stamp in self.received[topic]:
                self.duplicates[topic] += 1
            else:
                self.received[topic][stamp] = now

    def mark_sent(self, stamp_ns: int, publish_time: float) -> None:
        with self._lock:
            self.sent.setdefault(stamp_ns, publish_time)

    def connected(self) -> bool:
        """True once every output topic has a publisher."""
        return all(sub.get_publisher_count() > 0 for sub in self._subscriptions)

    def summary(self) -> dict[str, object]:
        with self._lock:
            outputs: dict[str, object] = {}
            for topic in self.topics:
                got = self.received[topic]
                latencies = [(got[s] - sent) * 1e3 for s, sent in self.sent.items() if s in got]
                outputs[topic] = {
                    "received": len(latencies), "dropped": len(self.sent) - len(latencies),
                    "drop_rate": (len(self.sent) - len(latencies)) / len(self.sent) if self.sent else None,
                    "unexpected": len(set(got) - set(self.sent)), "duplicates": self.duplicates[topic],
                    "latency_ms": _stats(latencies)}
            return {"sent": len(self.sent), "outputs": outputs}

    def write_csv(self, path: Path) -> None:
        with self._lock, path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["stamp_ns", *(f"{t}_latency_ms" for t in self.topics)])
            for stamp, sent in sorted(self.sent.items()):
                writer.writerow([stamp, *(f"{(self.received[t][stamp] - sent) * 1e3:.3f}"
                                          if stamp in self.received[t] else "" for t in self.topics)])


@dataclass
class PlayResult:
    published: dict[str, int]
    seconds: float
    damage: str | None
    record: dict[str, object] | None = None


class Player:
    """Publishes a bag's messages on `node` at the bag's timing / `rate` (raw CDR, headers untouched)."""

    def __init__(self, node: Node, reader: BagReader, topics: Sequence[str], rate: float = 1.0,
                 clock: bool = False) -> None:
        if not rate > 0:
            raise DataError(f"--rate must be positive, got {rate}")
        self.node, self.reader, self.rate = node, reader, rate
        available = reader.topics
        missing = [t for t in topics if t not in available]
        if missing:
            raise DataError(f"topics {missing} are not in bag {reader.path}; it has: {reader.describe_topics()}")
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.topics = list(topics)
        self.publishers = {t: node.create_publisher(message_class(available[t][0]), t, qos) for t in topics}
        self.clock = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self.clock = node.create_publisher(Clock, "/clock", 10)

    def wait_for_subscribers(self, topic: str, timeout_s: float) -> bool:
        """Wait until the publisher of `topic` (or /clock) has a subscriber; False after `timeout_s`."""
        publisher = self.clock if topic == "/clock" else self.publishers.get(topic)
        if publisher is None:
            raise DataError(f"cannot wait for subscribers of {topic}: it is not played ({self.topics})")
        deadline = time.monotonic() + timeout_s
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _publish_clock(self, bag_time_ns: int) -> None:
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        sec, nanosec = divmod(bag_time_ns, 1_000_000_000)
        self.clock.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))  # type: ignore[union-attr]

    def _wait_until(self, wall: float, bag_at: Callable[[float], int], bag_target: int) -> None:
        """Sleep until `wall` (monotonic s), publishing /clock on the way, never past `bag_target` (ns)."""
        while (remaining := wall - time.monotonic()) > 0:
            if self.clock is not None:
                self._publish_clock(min(bag_at(time.monotonic()), bag_target))
            time.sleep(min(remaining, CLOCK_PERIOD_S) if self.clock is not None else remaining)

    def play(self, on_publish: Callable[[RawMessage, float], None] | None = None) -> PlayResult:
        """Publish every message; `on_publish(message, monotonic time just before publishing)` follows each."""
        published = dict.fromkeys(self.topics, 0)
        start_wall = time.monotonic()
        first_bag: int | None = None

        def bag_at(wall: float) -> int:
            return int((first_bag or 0) + (wall - start_wall) * self.rate * 1e9)

        for message in self.reader.messages(self.topics):
            if first_bag is None:
                first_bag, start_wall = message.bag_time_ns, time.monotonic()
            self._wait_until(start_wall + (message.bag_time_ns - first_bag) / 1e9 / self.rate, bag_at,
                             message.bag_time_ns)
            if self.clock is not None:
                self._publish_clock(message.bag_time_ns)
            publish_time = time.monotonic()
            self.publishers[message.topic].publish(message.data)
            published[message.topic] += 1
            if on_publish is not None:
                on_publish(message, publish_time)
        return PlayResult(published, time.monotonic() - start_wall, self.reader.damage)


def play_bag(bag: str | Path, topics: Sequence[str] | None = None, rate: float = 1.0, clock: bool = False,
             record_dir: str | Path | None = None, input_topic: str = "/camera/image_raw",
             outputs: Sequence[str] = OUTPUT_TOPICS, wait_s: float = 10.0, settle_s: float = 2.0,
             wait_for: Sequence[str] | None = None) -> PlayResult:
    """Play `bag` (all its topics by default) into ROS 2; with `record_dir`, record the node's outputs.

    The player first waits up to `wait_s` for a subscriber on each topic of `wait_for` (default: the
    `input_topic`, when it is played; "/clock" may be named) and, when recording, for
    publishers of the outputs), and after the last message waits `settle_s` for late outputs. With
    `record_dir`, writes record_dir/play_summary.json, latency.csv and latency.png (histogram).
    """
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = Node("mnm_bag_play", context=context)
    spinner: threading.Thread | None = None
    try:
        with BagReader(bag) as reader:
            chosen = list(topics) if topics else sorted(reader.topics)
            player = Player(node, reader, chosen, rate=rate, clock=clock)
            recorder = Recorder(node, tuple(outputs)) if record_dir is not None else None
            executor.add_node(node)
            spinner = threading.Thread(target=executor.spin, daemon=True)
            spinner.start()
            waits = list(wait_for) if wait_for is not None else [input_topic] if input_topic in chosen else []
            deadline = time.monotonic() + wait_s
            for topic in waits:
                if not player.wait_for_subscribers(topic, max(0.0, deadline - time.monotonic())):
                    LOGGER.warning("no subscriber on %s after %.0f s; playing anyway", topic, wait_s)
            if recorder is not None:
                deadline = time.monotonic() + wait_s
                while not recorder.connected() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not recorder.connected():
                    LOGGER.warning("no publisher on %s after %.0f s: is the node running?", list(outputs), wait_s)

            def on_publish(message: RawMessage, publish_time: float) -> None:
                if recorder is not None and message.topic == input_topic:
                    try:
                        recorder.mark_sent(reader.header_stamp(message), publish_time)
                    except DataError as exc:
                        LOGGER.warning("%s", exc)

            result = player.play(on_publish)
            if recorder is not None:
                time.sleep(settle_s)
                result.record = _record_summary(bag, rate, input_topic, result, recorder)
                out = Path(record_dir)  # type: ignore[arg-type]
                out.mkdir(parents=True, exist_ok=True)
                (out / "play_summary.json").write_text(json.dumps(result.record, indent=2) + "\n")
                recorder.write_csv(out / "latency.csv")
                _write_histogram(recorder, out / "latency.png")
    finally:
        executor.shutdown()
        if spinner is not None:  # let spin() return before the node and context go: an unjoined spinner
            spinner.join(SPINNER_JOIN_S)  # aborted the process at exit ("terminate called …")
        node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
    return result


def _write_histogram(recorder: Recorder, path: Path) -> None:
    """End-to-end latency histogram of the first output topic (nothing when no output came)."""
    from mnm_core.bags.report import latency_histogram

    topic = recorder.topics[0]
    latencies = [(recorder.received[topic][s] - t) * 1e3 for s, t in recorder.sent.items()
                 if s in recorder.received[topic]]
    if latencies:
        latency_histogram(latencies, path, label=f"end-to-end latency on {topic} (ms)")


def _record_summary(bag: str | Path, rate: float, input_topic: str, result: PlayResult,
                    recorder: Recorder) -> dict[str, object]:
    sent = result.published.get(input_topic, 0)
    return {"bag": str(bag), "rate": rate, "input_topic": input_topic, "published": result.published,
            "play_seconds": round(result.seconds, 3),
            "input_hz": round((sent - 1) / result.seconds, 3) if sent > 1 and result.seconds > 0 else None,
            "damage": result.damage, **recorder.summary()}


__all__ = ["OUTPUT_TOPICS", "PlayResult", "Player", "Recorder", "message_class", "play_bag"]
