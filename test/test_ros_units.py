"""Pieces of the ROS layer that need no DDS traffic: conversions, the one-slot buffer, parameters, QoS, stats."""

from __future__ import annotations

import ast
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mnm_core.config import PipelineConfig, TextConfig
from mnm_ros.frame_slot import FrameSlot

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
    np.testing.assert_array_equal(frame.array, values)


def test_padded_rows_and_alpha():
    values = np.dstack([_rgb(), np.full((6, 8), 9, np.uint8)])
    msg = array_to_image(values, "bgra8")
    rows = np.frombuffer(msg.data, np.uint8).reshape(6, 32)
    msg.data = np.concatenate([rows, np.zeros((6, 4), np.uint8)], axis=1).tobytes()
    msg.step = 36
    frame = image_to_frame(msg)
    assert frame.layout == "bgr"
    np.testing.assert_array_equal(frame.array, values[:, :, :3])
    out = fused_to_image(frame.array.copy(), frame)
    assert out.encoding == "bgra8"
    np.testing.assert_array_equal(image_to_array(out), values)


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_is_scaled_to_eight_bits_and_back(bigendian):
    values = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000
    msg = array_to_image(values, "mono16")
    if bigendian:
        msg.data = values.astype(">u2").tobytes()
        msg.is_bigendian = 1
    frame = image_to_frame(msg)
    np.testing.assert_array_equal(frame.array, (values >> 8).astype(np.uint8))
    out = fused_to_image(frame.array, frame)
    assert out.encoding == "mono16"
    np.testing.assert_array_equal(image_to_array(out), frame.array.astype(np.uint16) * 257)


@pytest.mark.parametrize(("encoding", "code"), [("yuv422", "COLOR_YUV2RGB_UYVY"), ("yuyv", "COLOR_YUV2RGB_YUYV")])
def test_yuv422_is_converted_to_rgb(encoding, code):
    import cv2

    packed = np.random.default_rng(1).integers(0, 256, (6, 16), dtype=np.uint8)
    msg = array_to_image(packed, "mono8")
    msg.encoding, msg.width = encoding, 8
    frame = image_to_frame(msg)
    assert frame.layout == "rgb" and frame.output_encoding == "rgb8"
    np.testing.assert_array_equal(frame.array, cv2.cvtColor(packed.reshape(6, 8, 2), getattr(cv2, code)))


def test_compressed_round_trip():
    values = _rgb(16, 16)
    frame = compressed_to_frame(array_to_compressed(values, "png"))
    assert frame.layout == "bgr" and frame.output_encoding == "bgr8"
    np.testing.assert_array_equal(frame.array, values)
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


@pytest.mark.parametrize(("kind", "msg"), list(_bad_images()))
def test_bad_images_are_refused_by_kind(kind, msg):
    with pytest.raises(FrameError) as info:
        image_to_frame(msg)
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
    assert int(segment.text) >= 8 * 2**20
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
