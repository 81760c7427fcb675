"""Load the launch descriptions with ROS 2's own `launch`/`launch_ros` (a sourced ROS 2; no PyPI wheels exist).

The PyPI package named `launch` is not ROS's, so the skip checks for `launch_ros`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("launch_ros", reason="needs ROS 2's launch and launch_ros (source a ROS 2 install); "
                                         "they are not on PyPI")

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch_ros.actions import Node

LAUNCH = Path(__file__).resolve().parents[1] / "launch"


def _description(name: str):
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def test_fuse_launch_declares_arguments_and_the_node():
    description = _description("fuse.launch.py")
    names = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert {"namespace", "input_topic", "config", "backend", "use_sim_time"} <= names
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert len(nodes) == 1


def test_two_cameras_include_fuse_launch_twice():
    description = _description("two_cameras.launch.py")
    assert sum(isinstance(e, IncludeLaunchDescription) for e in description.entities) == 2
