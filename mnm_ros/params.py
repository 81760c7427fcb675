"""ROS parameters of the fusion node: declared from the typed defaults, validated on every set.

Four groups, each a frozen dataclass whose defaults and attribute docstrings become the parameters'
defaults and descriptors: the node's own (`NodeConfig`, no prefix), `qos.*` (`QosConfig`),
`pipeline.*` (mnm_core PipelineConfig) and `text.*` (mnm_core TextConfig). Values are read on
configure; a change is validated at once by the same dataclass checks as YAML and the CLI (types,
allowed values, bounds, an existing checkpoint file) and takes effect at the next configure (cleanup,
configure). A refused change leaves the parameter at its last good value.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Literal

from mnm_core.config import PipelineConfig, TextConfig, bounded, field_bounds, from_mapping, validate_fields
from mnm_core.errors import ConfigError


@dataclass(frozen=True)
class NodeConfig:
    """The node's own settings."""

    input_type: Literal["auto", "raw", "compressed"] = "auto"
    """Input message type: raw (sensor_msgs/Image), compressed (CompressedImage), or auto (from the publisher)."""
    diagnostics_period_s: float = bounded(1.0, 0.1, 3600.0, "s")
    """Seconds between /diagnostics messages."""
    autostart: bool = True
    """Configure and activate at start-up; false leaves the lifecycle transitions to a manager."""
    max_frame_pixels: int = bounded(1920 * 1200, 64, 100_000_000)
    """Largest input frame (width × height) processed; larger ones are rejected before decoding (inference needs
    about 1.4 GB per megapixel with the small model)."""

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class QosConfig:
    """QoS of the input subscription and the output publishers (sensor-data profile otherwise)."""

    reliability: Literal["best_effort", "reliable"] = "best_effort"
    """best_effort (sensor data) or reliable; a reliable subscriber cannot read a best-effort publisher."""
    depth: int = bounded(5, 1, 1000)
    """History depth (keep last)."""

    def __post_init__(self) -> None:
        validate_fields(self)


GROUPS: dict[str, type] = {"": NodeConfig, "qos.": QosConfig, "pipeline.": PipelineConfig, "text.": TextConfig}
"""Parameter-name prefix → dataclass."""

READ_ONLY = frozenset({"pipeline.checkpoint", "pipeline.onnx_path", "pipeline.engine_cache_dir", "text.model_dir",
                       "text.trust_remote_code", "text.url"})
"""Parameters that choose what code, weights or servers the node trusts: set at start-up (command line, YAML,
launch), never by a peer on the ROS graph (docs/ros.md, trust model)."""


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string right after each field) of a dataclass, by field name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr) \
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _split(name: str) -> tuple[str, type, str] | None:
    """Parameter name → (prefix, dataclass, field name); None for names outside the groups."""
    for prefix, cls in GROUPS.items():
        field = name[len(prefix):]
        if name.startswith(prefix) and field in {f.name for f in dataclasses.fields(cls)}:
            return prefix, cls, field
    return None


def parameter_defaults() -> dict[str, Any]:
    """Every parameter name with its default value."""
    return {prefix + f.name: getattr(cls(), f.name) for prefix, cls in GROUPS.items() for f in dataclasses.fields(cls)}


def declare_parameters(node) -> None:
    """Declare every parameter with a descriptor (description, allowed values) and register validation."""
    from rcl_interfaces.msg import ParameterDescriptor

    for name, default in parameter_defaults().items():
        _, cls, field = _split(name)  # type: ignore[misc]
        annotation = typing.get_type_hints(cls)[field]
        allowed = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
        bounds = field_bounds(cls, field)
        constraints = f"one of {list(allowed)}" if allowed else f"in {bounds}" if bounds else ""
        descriptor = ParameterDescriptor(name=name, description=field_docs(cls).get(field, ""),
                                         additional_constraints=constraints, read_only=name in READ_ONLY)
        node.declare_parameter(name, default, descriptor)
    node.add_on_set_parameters_callback(functools.partial(validate_parameters, node))


def _group_values(node, prefix: str, cls: type, overrides: dict[str, Any] | None = None) -> Any:
    values = {f.name: node.get_parameter(prefix + f.name).value for f in dataclasses.fields(cls)}
    values.update(overrides or {})
    return from_mapping(cls, values)


def validate_parameters(node, parameters: list) -> Any:
    """Set-parameters callback: rebuild each touched group with the new values; refuse what fails."""
    from rcl_interfaces.msg import SetParametersResult

    touched: dict[str, dict[str, Any]] = {}
    for parameter in parameters:
        where = _split(parameter.name)
        if where is not None:
            touched.setdefault(where[0], {})[where[2]] = parameter.value
    try:
        for prefix, overrides in touched.items():
            _group_values(node, prefix, GROUPS[prefix], overrides)
    except ConfigError as exc:
        return SetParametersResult(successful=False, reason=str(exc))
    return SetParametersResult(successful=True)


LAUNCH_ARGUMENTS = {"backend": "pipeline.backend", "text_encoder": "text.encoder", "use_sim_time": "use_sim_time"}
"""Launch arguments of fuse.launch.py that set a node parameter → that parameter."""


def launch_overrides(arguments: dict[str, str]) -> dict[str, Any]:
    """The parameters set by launch arguments: only the arguments given (an empty value keeps the parameter
    file's setting), validated and typed as the node will read them. ConfigError for a bad value."""
    overrides: dict[str, Any] = {}
    for argument, parameter in LAUNCH_ARGUMENTS.items():
        text = arguments.get(argument, "").strip()
        if not text:
            continue
        if parameter == "use_sim_time":
            if text.lower() not in ("true", "false"):
                raise ConfigError(f"launch argument use_sim_time must be true or false, got {text!r}")
            overrides[parameter] = text.lower() == "true"
        else:
            _, cls, field = _split(parameter)  # type: ignore[misc]
            from_mapping(cls, {field: text})
            overrides[parameter] = text
    return overrides


def read_configs(node) -> tuple[NodeConfig, QosConfig, PipelineConfig, TextConfig]:
    """The node's current parameters as the four typed configs (ConfigError if invalid)."""
    return tuple(_group_values(node, prefix, cls) for prefix, cls in GROUPS.items())  # type: ignore[return-value]


__all__ = ["GROUPS", "LAUNCH_ARGUMENTS", "READ_ONLY", "NodeConfig", "QosConfig", "declare_parameters", "field_docs",
           "launch_overrides", "parameter_defaults", "read_configs", "validate_parameters"]
