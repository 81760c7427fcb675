"""Live replay: `mnm bag-play` publishes a bag into ROS 2 (rclpy from PyPI), a live subscriber receives it,
and the recorder measures the fusion node's outputs end to end. DDS is isolated per test run."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (pip ros-rclpy[fastrtps] or a sourced ROS 2)")

from mnm_core.bags import BagWriter  # noqa: E402
from mnm_core.checkpoint import CheckpointInfo, save_checkpoint  # noqa: E402
from mnm_core.config import preset  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

VIS, IR = "/camera/image_raw", "/thermal/image_raw"
START = 1_700_000_000_000_000_000
PERIOD = 100_000_000  # 10 Hz


@pytest.fixture(scope="module", autouse=True)
def _isolated_dds() -> None:
    """A random domain, discovery on this host only, so parallel runs and other engineers' nodes never mix."""
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ["ROS_DOMAIN_ID"] = str(random.randint(1, 200))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _make_bag(path: Path, count: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    frames = []
    with BagWriter(path, "mcap") as writer:
        for k in range(count):
            vis = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
            writer.write_image(VIS, vis, "rgb", START + k * PERIOD, frame_id="camera")
            writer.write_image(IR, vis[:, :, 0], "gray", START + k * PERIOD, frame_id="thermal")
            frames.append(vis)
    return frames


class _Listener:
    """A plain rclpy subscriber in its own context and thread."""

    def __init__(self, topics: list[str]) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("listener", context=self.context)
        self.messages: dict[str, list] = {t: [] for t in topics}
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic in topics:
            self.node.create_subscription(Image, topic, lambda m, t=topic: self.messages[t].append(m), qos)
        self.clock: list[int] = []
        self.node.create_subscription(
            Clock, "/clock", lambda m: self.clock.append(m.clock.sec * 10**9 + m.clock.nanosec), 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def test_play_into_live_subscriber(tmp_path: Path) -> None:
    from mnm_ros.bag_play import play_bag

    frames = _make_bag(tmp_path / "bag")
    listener = _Listener([VIS, IR])
    try:
        result = play_bag(tmp_path / "bag", rate=4.0, clock=True, wait_s=30, settle_s=0.5,
                          wait_for=[VIS, IR, "/clock"])
        deadline = time.monotonic() + 10
        while min(len(v) for v in listener.messages.values()) < len(frames) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.close()
    assert result.published == {VIS: 8, IR: 8} and result.damage is None
    received = listener.messages[VIS]
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in received] == \
        [START + k * PERIOD for k in range(8)]
    assert received[0].encoding == "rgb8" and received[0].header.frame_id == "camera"
    assert np.array_equal(np.asarray(received[3].data, np.uint8).reshape(24, 32, 3), frames[3])
    assert len(listener.messages[IR]) == 8
    # /clock runs in bag time, forwards, from the first message's time to the last one's
    assert listener.clock and listener.clock == sorted(listener.clock)
    assert START <= listener.clock[0] and listener.clock[-1] == START + 7 * PERIOD


def test_missing_topic_is_reported(tmp_path: Path) -> None:
    from mnm_core.errors import DataError
    from mnm_ros.bag_play import play_bag

    _make_bag(tmp_path / "bag", count=1)
    with pytest.raises(DataError, match=r"\['/nope'\] are not in bag .*it has: /camera/image_raw"):
        play_bag(tmp_path / "bag", topics=["/nope"], wait_s=0)


def _node_command() -> list[str] | None:
    exe = shutil.which("fuse_node", path=str(Path(sys.executable).parent))
    return [exe] if exe else None


@pytest.mark.slow
def test_replay_through_the_node(tmp_path: Path) -> None:
    """End to end: bag → fuse_node (subprocess, tiny random model) → recorder, at 10 Hz."""
    import torch

    from mnm_core.model import VgiiModel
    from mnm_ros.bag_play import play_bag

    command = _node_command()
    if command is None:
        pytest.skip("the fuse_node executable is not installed (pip install -e .)")
    config = preset("tiny")
    model = VgiiModel(config)
    model.set_dictionary(torch.randn(config.n_atoms, 5, 5) * 0.1)
    checkpoint = save_checkpoint(tmp_path / "tiny.safetensors", model,
                                 CheckpointInfo(kind="vgii", preset="tiny", model_config=config, text_encoder="none"))
    _make_bag(tmp_path / "bag", count=20)
    node = subprocess.Popen(
        [*command, "--ros-args", "-r", f"image:={VIS}", "-p", f"pipeline.checkpoint:={checkpoint}",
         "-p", "pipeline.backend:=torch", "-p", "text.encoder:=none"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        result = play_bag(tmp_path / "bag", topics=[VIS], rate=1.0, record_dir=tmp_path / "record", wait_s=60,
                          settle_s=3.0)
    finally:
        node.terminate()
        try:
            log = node.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            node.kill()
            log = node.communicate()[0]
    record = json.loads((tmp_path / "record" / "play_summary.json").read_text())
    assert record == result.record
    assert record["sent"] == 20, log
    for topic in ("/mnm/fused", "/mnm/pseudo_ir"):
        stats = record["outputs"][topic]
        assert stats["received"] > 0, log
        assert stats["received"] + stats["dropped"] == 20 and stats["unexpected"] == 0
        assert stats["latency_ms"]["mean"] > 0
    assert (tmp_path / "record" / "latency.csv").read_text().count("\n") == 21
    assert (tmp_path / "record" / "latency.png").is_file()
