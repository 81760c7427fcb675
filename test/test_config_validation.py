"""Bad configuration values are refused with one clear message, whichever way they come in: built in
Python, from a YAML mapping, from launch arguments, or set on the live node (which keeps the last good
value). Every numeric field of the node's configuration has bounds, and they are enforced."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import random
import re
from pathlib import Path

import pytest

from mnm_core.commands.options import size_type
from mnm_core.config import PipelineConfig, TextConfig, field_bounds, from_mapping, parse_size
from mnm_core.errors import ConfigError
from mnm_ros.params import GROUPS, NodeConfig, QosConfig, launch_overrides

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = (TextConfig, PipelineConfig, NodeConfig, QosConfig)

BAD_VALUES = [
    (TextConfig, "refresh_period_s", -1.0, r"TextConfig\.refresh_period_s must be in \[0\.01, 86400\] s, got -1\.0"),
    (TextConfig, "refresh_period_s", 1e10, r"TextConfig\.refresh_period_s must be in .*, got 10000000000\.0"),
    (TextConfig, "timeout_s", 0.0, r"TextConfig\.timeout_s must be in \[0\.01, 3600\] s, got 0\.0"),
    (TextConfig, "timeout_s", math.nan, r"TextConfig\.timeout_s must be in .*, got nan"),
    (TextConfig, "url", "ftp://host/v1", r"TextConfig\.url must start with http"),
    (TextConfig, "pooling", "max", r"TextConfig\.pooling: 'max' is not one of"),
    (PipelineConfig, "device", "banana", r"PipelineConfig\.device must be auto, cpu, cuda or cuda:N, got 'banana'"),
    (PipelineConfig, "checkpoint", "/nowhere/model.safetensors", r"checkpoint: /nowhere/model\.safetensors does not"),
    (PipelineConfig, "onnx_path", "/nowhere/model.onnx", r"onnx_path: /nowhere/model\.onnx does not exist"),
    (NodeConfig, "diagnostics_period_s", 1e-9, r"NodeConfig\.diagnostics_period_s must be in \[0\.1, 3600\] s"),
    (QosConfig, "depth", 0, r"QosConfig\.depth must be in \[1, 1000\], got 0"),
]


def _numeric_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.type in ("int", "float", int, float)]


@pytest.mark.parametrize(("cls", "field", "value", "message"), BAD_VALUES)
def test_bad_values_are_refused_when_built_and_from_a_mapping(cls, field, value, message):
    with pytest.raises(ConfigError, match=message):
        cls(**{field: value})
    with pytest.raises(ConfigError, match=message):  # a YAML file or ROS parameters go through from_mapping
        from_mapping(cls, {field: value})


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_numeric_field_has_bounds_and_they_are_enforced(cls):
    assert _numeric_fields(cls) or cls is PipelineConfig
    for field in _numeric_fields(cls):
        bounds = field_bounds(cls, field)
        assert bounds is not None, f"{cls.__name__}.{field} has no bounds"
        for inside in (bounds.low, bounds.high):
            assert getattr(cls(**{field: inside}), field) == inside
        is_int = isinstance(getattr(cls(), field), int)
        step = 1 if is_int else bounds.low * 1e-3 or 1e-9
        for outside in (bounds.low - step, bounds.high + step) + (() if is_int else (math.inf, -math.inf)):
            with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field} must be in"):
                cls(**{field: outside})


def test_an_existing_checkpoint_and_cuda_devices_are_accepted(tmp_path):
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"weights")
    assert PipelineConfig(checkpoint=str(checkpoint), device="cuda:1").device == "cuda:1"
    with pytest.raises(ConfigError, match="not a file"):
        PipelineConfig(checkpoint=str(tmp_path))


def test_one_size_parser():
    assert parse_size("640x512") == parse_size(" 640 × 512 ") == parse_size("640X512") == (512, 640)
    for bad in ("640", "640x", "x512", "0x512", "640x-1", "6.5x4", "640*512"):
        with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
            parse_size(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxHEIGHT"):  # a usage error on the command line
        size_type("0x512")


def test_the_cli_refuses_a_bad_size_as_a_usage_error(capsys):
    from mnm_core.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--out", "x.onnx", "--size", "640x0"])
    assert exit_info.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err


def test_cli_defaults_come_from_the_dataclasses():
    from mnm_core.cli import build_parser

    args = build_parser().parse_args(["demo", "--out", "x"])
    assert (args.backend, args.text_encoder) == (PipelineConfig().backend, TextConfig().encoder)


def test_launch_arguments_override_only_when_given():
    assert launch_overrides({"backend": "", "text_encoder": "", "use_sim_time": ""}) == {}
    assert launch_overrides({"backend": "torch", "use_sim_time": "True"}) == {
        "pipeline.backend": "torch", "use_sim_time": True}
    assert launch_overrides({"text_encoder": "none"}) == {"text.encoder": "none"}
    with pytest.raises(ConfigError, match=r"PipelineConfig\.backend: 'caffe' is not one of"):
        launch_overrides({"backend": "caffe"})
    with pytest.raises(ConfigError, match="use_sim_time must be true or false"):
        launch_overrides({"use_sim_time": "yes please"})


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "launch").glob("*.launch.py")))
def test_launch_files_evaluate_nothing(name):
    """No PythonExpression (an eval of launch-argument text) in launch files."""
    tree = ast.parse((ROOT / "launch" / name).read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "PythonExpression" not in names and "eval" not in names


@pytest.fixture
def ros_node():
    """A real rclpy node (own context, random domain) with the fusion node's parameters declared."""
    rclpy = pytest.importorskip("rclpy", reason="needs rclpy")
    from mnm_ros.params import declare_parameters

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=random.randint(101, 200))
    node = rclpy.create_node("params_under_test", context=context)
    declare_parameters(node)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.mark.ros
@pytest.mark.parametrize(("cls", "field", "value", "message"), BAD_VALUES)
def test_live_parameter_sets_are_refused_and_the_last_good_value_kept(ros_node, cls, field, value, message):
    from rclpy.parameter import Parameter

    prefix = next(p for p, c in GROUPS.items() if c is cls)
    name = prefix + field
    before = ros_node.get_parameter(name).value
    result = ros_node.set_parameters([Parameter(name, value=type(before)(value))])[0]
    assert not result.successful and ros_node.get_parameter(name).value == before
    if ros_node.describe_parameter(name).read_only:
        return  # refused whatever the value (trust model); YAML and launch values meet the checks below
    assert re.search(message, result.reason)
    assert result.reason == _refusal(cls, field, value)  # the very message of YAML and Python


def _refusal(cls: type, field: str, value: object) -> str:
    with pytest.raises(ConfigError) as info:
        from_mapping(cls, {field: value})
    return str(info.value)


@pytest.mark.ros
def test_live_parameter_sets_accept_good_values_and_describe_bounds(ros_node):
    from rclpy.parameter import Parameter

    for name, value in (("pipeline.device", "cuda:0"), ("text.refresh_period_s", 5.0),
                        ("diagnostics_period_s", 0.5), ("qos.depth", 10)):
        assert ros_node.set_parameters([Parameter(name, value=value)])[0].successful, name
        assert ros_node.get_parameter(name).value == value
    descriptor = ros_node.describe_parameter("text.refresh_period_s")
    assert descriptor.additional_constraints == "in [0.01, 86400] s"
