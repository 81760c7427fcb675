"""QoS of the node's topics and the Fast DDS transport profile for large images.

Fast DDS's default shared-memory segment is 512 KB; a bigger sample (640×480 rgb8 is 900 KB) falls back
to fragmented UDP, where best-effort delivery loses most frames. `config/fastdds_large_data.xml`
gives every participant a 64 MB shared-memory segment (UDP stays for discovery and other hosts): frames
up to half of it (32 MB) arrive, which covers every encoding at the node's default max_frame_pixels.
Fast DDS reads it from FASTDDS_DEFAULT_PROFILES_FILE, which must be set before the process starts
its ROS context — in the environment of the camera driver and of this node.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Mapping
from pathlib import Path

RELIABILITIES = ("best_effort", "reliable")
LARGE_DATA_PROFILE = "fastdds_large_data.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
"""Fast DDS ≥ 2.x reads the first; older releases (Humble's 2.6) also the second."""


def make_qos(reliability: str = "best_effort", depth: int = 5):
    """The sensor-data profile (keep last, volatile) with the given reliability and history depth."""
    from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

    return QoSProfile(
        history=QoSHistoryPolicy.KEEP_LAST,
        depth=depth,
        durability=QoSDurabilityPolicy.VOLATILE,
        reliability=QoSReliabilityPolicy.RELIABLE if reliability == "reliable" else QoSReliabilityPolicy.BEST_EFFORT,
    )


def large_data_profile() -> Path | None:
    """The shipped Fast DDS profile: installed share/mnm_ros/config, or config/ of a source checkout."""
    return shipped_config(LARGE_DATA_PROFILE)


def shipped_config(name: str) -> Path | None:
    """The shipped file config/`name` (fuse.yaml, the Fast DDS profile): installed share/mnm_ros/config, or
    config/ of a source checkout; None when neither has it."""
    candidates = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory("mnm_ros")) / "config")
        except (PackageNotFoundError, LookupError, OSError):  # OSError: AMENT_PREFIX_PATH unset
            pass
    except ImportError:
        pass
    candidates += [Path(sys.prefix) / "share" / "mnm_ros" / "config", Path(__file__).resolve().parents[1] / "config"]
    for folder in candidates:
        if (folder / name).is_file():
            return folder / name
    return None


def _profile_variables() -> tuple[str, ...]:
    """The variables to set: Fast DDS 3 (the PyPI wheels) warns that the old name is deprecated."""
    try:
        major = int(importlib.metadata.version("ros-fastdds").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return PROFILE_VARIABLES  # a system ROS 2 install: its Fast DDS may read only the old name
    return PROFILE_VARIABLES[:1] if major >= 3 else PROFILE_VARIABLES


def large_data_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) with the large-data profile set, unless the user set a profile already."""
    env = dict(os.environ if base is None else base)
    profile = large_data_profile()
    if profile is not None and not any(env.get(name) for name in PROFILE_VARIABLES):
        for name in _profile_variables():
            env[name] = str(profile)
    return env
