"""Pieces of the ROS layer that need no DDS traffic: conversions, the one-slot buffer, parameters, QoS, stats."""

from __future__ import annotations

import ast
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mnm_core.config import PipelineConfig, TextConfig
from mnm_ros.frame_slot import FrameSlot
from test.test_frames import png_bomb

ROOT = Path(__file__).resolve().parents[1]


def test_frame_slot_keeps_the_newest_and_counts_drops():
    slot: FrameSlot[int] = FrameSlot()
    assert slot.take(timeout=0.01) is None
    assert not slot.put(1)
    assert slot.put(2) and slot.put(3)
    assert slot.take() == 3
    assert (slot.accepted, slot.dropped) == (3, 2)
    assert slot.take(timeout=0.01) is None


def test_frame_slot_close_wakes_a_waiting_worker():
    slot: FrameSlot[int] = FrameSlot()
    got = []
    worker = threading.Thread(target=lambda: got.append(slot.take()))
    worker.start()
    slot.close()
    worker.join(timeout=5.0)
    assert not worker.is_alive() and got == [None]
    slot.put(1)
    assert slot.take(timeout=0.01) is None


sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="needs the ROS message packages (ros-sensor-msgs)")
from mnm_ros.conversions import (  # noqa: E402
    FrameError,
    array_to_compressed,
    array_to_image,
    compressed_to_frame,
    fused_to_image,
    image_to_array,
    image_to_frame,
)


def _rgb(height=6, width=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("encoding", "layout"), [("rgb8", "rgb"), ("bgr8", "bgr")])
def test_colour_images_are_viewed_as_is(encoding, layout):
    values = _rgb()
    frame = image_to_frame(array_to_image(values, encoding))
    assert frame.layout == layout and frame.output_encoding == encoding
    np.testing.assert_array_equal(frame.image, values)


def test_padded_rows_and_alpha():
    values = np.dstack([_rgb(), np.full((6, 8), 9, np.uint8)])
    msg = array_to_image(values, "bgra8")
    rows = np.frombuffer(msg.data, np.uint8).reshape(6, 32)
    msg.data = np.concatenate([rows, np.zeros((6, 4), np.uint8)], axis=1).tobytes()
    msg.step = 36
    frame = image_to_frame(msg)
    assert frame.layout == "bgr"
    np.testing.assert_array_equal(frame.image, values[:, :, :3])
    out = fused_to_image(frame.image.copy(), frame)
    assert out.encoding == "bgra8"
    np.testing.assert_array_equal(image_to_array(out), values)


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_follows_the_core_policy_and_goes_back_as_mono16(bigendian):
    from mnm_core.frames import to_eight_bit

    values = 3000 + np.arange(48, dtype=np.uint16).reshape(6, 8) * 7  # thermal counts in a narrow band
    msg = array_to_image(values, "mono16")
    if bigendian:
        msg.data = values.astype(">u2").tobytes()
        msg.is_bigendian = 1
    frame = image_to_frame(msg)
    np.testing.assert_array_equal(frame.image, to_eight_bit(values)[0])
    assert frame.image.min() == 0 and frame.image.max() == 255
    out = fused_to_image(frame.image, frame)
    assert out.encoding == "mono16"
    np.testing.assert_array_equal(image_to_array(out), frame.image.astype(np.uint16) * 257)


@pytest.mark.parametrize(("encoding", "code"), [("yuv422", "COLOR_YUV2RGB_UYVY"), ("yuyv", "COLOR_YUV2RGB_YUYV")])
def test_yuv422_is_converted_to_rgb(encoding, code):
    import cv2

    packed = np.random.default_rng(1).integers(0, 256, (6, 16), dtype=np.uint8)
    msg = array_to_image(packed, "mono8")
    msg.encoding, msg.width = encoding, 8
    frame = image_to_frame(msg)
    assert frame.layout == "rgb" and frame.output_encoding == "rgb8"
    np.testing.assert_array_equal(frame.image, cv2.cvtColor(packed.reshape(6, 8, 2), getattr(cv2, code)))


def test_compressed_round_trip():
    values = _rgb(16, 16)
    frame = compressed_to_frame(array_to_compressed(values, "png"))
    assert frame.layout == "bgr" and frame.output_encoding == "bgr8"
    np.testing.assert_array_equal(frame.image, values)
    gray = compressed_to_frame(array_to_compressed(values[:, :, 0], "png"))
    assert gray.layout == "gray" and gray.output_encoding == "mono8"


def _bad_images():
    def edit(**fields):
        msg = array_to_image(_rgb(), "rgb8")
        for name, value in fields.items():
            setattr(msg, name, value)
        return msg

    yield "encoding", edit(encoding="bayer_rggb8")
    yield "empty", edit(width=0, height=0, step=0, data=b"")
    yield "step", edit(step=20)
    yield "size", edit(data=bytes(10))
    yield "size", edit(encoding="yuv422", width=7, step=16, data=bytes(96))
    yield "too_large", edit(width=10000, height=10000, step=30000)  # refused from the fields alone


@pytest.mark.parametrize(("kind", "msg"), list(_bad_images()))
def test_bad_images_are_refused_by_kind(kind, msg):
    with pytest.raises(FrameError) as info:
        image_to_frame(msg, max_pixels=1920 * 1200)
    assert info.value.kind == kind


def test_bad_compressed_images_are_refused():
    msg = array_to_compressed(_rgb(), "jpeg")
    msg.format = "16UC1; compressedDepth"
    with pytest.raises(FrameError, match="unsupported compressed format"):
        compressed_to_frame(msg)
    msg.format, msg.data = "jpeg", b"not a jpeg"
    with pytest.raises(FrameError) as info:
        compressed_to_frame(msg)
    assert info.value.kind == "decode"
    msg.format, msg.data = "png", png_bomb(10000, 10000)  # 10000×10000 announced in a few hundred bytes
    with pytest.raises(FrameError) as info:
        compressed_to_frame(msg, max_pixels=1920 * 1200)
    assert info.value.kind == "too_large"


def test_parameters_cover_the_config_with_descriptions():
    from mnm_ros.params import GROUPS, field_docs, parameter_defaults

    defaults = parameter_defaults()
    assert defaults["pipeline.backend"] == PipelineConfig().backend
    assert defaults["text.encoder"] == TextConfig().encoder
    assert defaults["qos.reliability"] == "best_effort"
    for prefix, cls in GROUPS.items():
        docs = field_docs(cls)
        for name in (n[len(prefix):] for n in defaults if n.startswith(prefix) and "." not in n[len(prefix):]):
            assert docs.get(name), f"{prefix}{name} has no description"


def test_shipped_yaml_matches_the_declared_parameters():
    import yaml

    from mnm_ros.params import parameter_defaults

    def flatten(mapping, prefix=""):
        for key, value in mapping.items():
            if isinstance(value, dict):
                yield from flatten(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    values = dict(flatten(yaml.safe_load((ROOT / "config" / "fuse.yaml").read_text())["/**"]["ros__parameters"]))
    defaults = parameter_defaults()
    assert set(values) <= set(defaults), set(values) - set(defaults)
    for name, value in values.items():
        assert value == defaults[name] and type(value) is type(defaults[name]), name


def test_qos_and_large_data_profile():
    pytest.importorskip("rclpy", reason="needs rclpy")
    from rclpy.qos import QoSReliabilityPolicy

    from mnm_ros.qos import large_data_environment, large_data_profile, make_qos

    assert make_qos().reliability == QoSReliabilityPolicy.BEST_EFFORT
    assert make_qos("reliable", 2).depth == 2
    profile = large_data_profile()
    assert profile is not None
    segment = ET.parse(profile).getroot().find(".//{http://www.eprosima.com}segment_size")
    # a sample arrives reliably when it fills at most half the segment (docs/ros.md): the largest frame the
    # node accepts by default, in the widest encoding (rgba16, 8 bytes per pixel), must
    from mnm_core.frames import ENCODINGS
    from mnm_ros.params import NodeConfig

    widest = max(spec.bytes_per_pixel for spec in ENCODINGS.values())
    assert int(segment.text) // 2 >= NodeConfig().max_frame_pixels * widest
    env = large_data_environment({})
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(profile)
    assert large_data_environment({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {
        "FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}


def test_node_stats_rates_and_latency():
    from mnm_ros.diagnostics import NodeStats, build_diagnostics, diagnostics_values

    stats = NodeStats()
    for latency in (10.0, 20.0, 30.0):
        stats.count_received()
        stats.count_processed(latency, latency / 2)
    stats.count_rejected("step")
    values = stats.snapshot(dropped=4)
    assert values["frames_processed"] == 3 and values["frames_dropped"] == 4 and values["frames_rejected"] == 1
    assert values["latency_ms_median"] == 20.0 and values["inference_ms_median"] == 10.0
    array = build_diagnostics("/mnm/fuse_node: fusion", sensor_msgs.Image().header.stamp, values,
                              {"backend": "torch fp32"})
    assert array.status[0].level == array.status[0].WARN
    assert diagnostics_values(array)["backend"] == "torch fp32"


def test_launch_files_declare_the_documented_arguments():
    """Static check that runs everywhere; test_ros_launch.py loads them where ROS's launch is installed."""
    tree = ast.parse((ROOT / "launch" / "fuse.launch.py").read_text())
    declared = {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    assert {"namespace", "input_topic", "config", "backend", "use_sim_time"} <= declared


def test_log_once_stays_bounded_whatever_a_peer_sends():
    """1500 frames with distinct 20 KB encoding strings: a bounded number of log lines and of remembered bytes."""
    import tracemalloc

    from mnm_ros.diagnostics import LogOnce

    log = LogOnce(capacity=64, key_chars=80)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    logged = [key for k in range(1500) if (key := log.admit(f"encoding:{k:05d}" + "x" * 20_000)) is not None]
    grown = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(logged) - sum(map(sys.getsizeof, logged))
    tracemalloc.stop()
    assert len(logged) == 65 and logged[-1] == LogOnce.OVERFLOW and all(len(key) <= 80 for key in logged)
    assert grown < 64 * 1024, f"remembered keys take {grown} bytes"
    assert log.admit("encoding:00001" + "x" * 20_000) is None  # each one once
    assert log.admit("encoding:99999") is None  # full: new ones share the key already logged


def test_diagnostics_warn_when_inference_is_slower_than_the_camera():
    from mnm_ros.diagnostics import NodeStats, build_diagnostics

    stats = NodeStats()
    for _ in range(100):
        stats.count_received()
    stats.count_processed(900.0, 850.0)
    status = build_diagnostics("n", sensor_msgs.Image().header.stamp, stats.snapshot(dropped=99), {}).status[0]
    assert status.level == status.WARN and "inference slower than the camera" in status.message
    assert "850 ms per frame" in status.message

    for _ in range(10):  # next period: every frame served
        stats.count_received()
        stats.count_processed(90.0, 80.0)
    status = build_diagnostics("n", sensor_msgs.Image().header.stamp, stats.snapshot(dropped=99), {}).status[0]
    assert status.level == status.OK, status.message
    stats.count_lost(3)
    status = build_diagnostics("n", sensor_msgs.Image().header.stamp, stats.snapshot(dropped=99), {}).status[0]
    assert status.level == status.WARN and "3 frames lost in transport" in status.message
