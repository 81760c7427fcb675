"""Checkpoints: safetensors files with the preset, model config, format version and text encoder.

Loading never executes pickled code. Every mismatch (missing or truncated file, other format version,
other preset or kind, other tensor shapes) and every malformed field is a CheckpointError that says what
differs. A checkpoint cannot make the loader allocate more than it holds: the model its config describes
is first built on the meta device (no memory), bounded to MAX_PARAMETERS and matched against the file's
tensors, and only then built for real.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnm_core.config import ModelConfig, from_mapping
from mnm_core.errors import CheckpointError, ConfigError

FORMAT_VERSION = 1
MAX_PARAMETERS = 200_000_000
"""Largest model a checkpoint may ask for (0.8 GB in fp32; the paper preset has about 11 M parameters)."""
DEFAULT_CHECKPOINT = "mnm_small.safetensors"
"""File name of the embedded default (the `small` preset) inside `mnm_core/weights/`: what `load_model`
loads without a path. The pipeline picks an embedded model per machine (mnm_core.machine)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """The metadata stored beside the tensors."""

    kind: str
    """'vgii' (the deployable stage-2 model) or 'jsrl' (the stage-1 network)."""
    preset: str
    model_config: ModelConfig
    text_encoder: str = "none"
    """Fingerprint of the text encoder the Φγ/Φβ heads were trained with."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance: training config, steps, metrics."""
    format_version: int = FORMAT_VERSION


def default_checkpoint_path(preset: str = "") -> Path:
    """The embedded checkpoint of `preset` shipped inside the package (default: DEFAULT_CHECKPOINT)."""
    name = f"mnm_{preset}.safetensors" if preset else DEFAULT_CHECKPOINT
    return Path(str(resources.files("mnm_core") / "weights" / name))


def save_checkpoint(path: str | Path, model: nn.Module, info: CheckpointInfo, half: bool = False) -> Path:
    """Write `model`'s state and `info`; `half` stores floating tensors as fp16 (buffers stay fp32)."""
    from safetensors.torch import save_file

    buffers = {name for name, _ in model.named_buffers()}
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point() and name not in buffers:
            tensor = tensor.half()
        tensors[name] = tensor
    metadata = {
        "mnm_format": str(info.format_version),
        "kind": info.kind,
        "preset": info.preset,
        "model_config": json.dumps(dataclasses.asdict(info.model_config)),
        "text_encoder": info.text_encoder,
        "extra": json.dumps(info.extra),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)  # atomic: an interrupted save never leaves a half-written checkpoint
    return path


def read_checkpoint(path: str | Path) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """Metadata and tensors of a checkpoint, checked for presence, integrity and format version."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types, OSError, or ValueError
        raise CheckpointError(f"checkpoint {path} is truncated or not an mnm safetensors file ({exc})") from exc
    if "mnm_format" not in metadata:
        raise CheckpointError(f"{path} is a safetensors file but not an mnm checkpoint (no 'mnm_format' metadata)")
    version = metadata["mnm_format"]
    if version != str(FORMAT_VERSION):
        raise CheckpointError(f"checkpoint {path} has format version {version[:40]!r}; this mnm reads version "
                              f"{FORMAT_VERSION}")
    try:
        values = {"model_config": json.loads(metadata["model_config"]),
                  "extra": json.loads(metadata.get("extra", "{}"))}
        for key, value in values.items():
            if not isinstance(value, dict):
                raise CheckpointError(f"checkpoint {path}: metadata {key!r} must be a JSON object, got a "
                                      f"{type(value).__name__}")
        config = from_mapping(ModelConfig, values["model_config"])
        info = CheckpointInfo(kind=metadata["kind"], preset=metadata["preset"], model_config=config,
                              text_encoder=metadata.get("text_encoder", "none"), extra=values["extra"],
                              format_version=FORMAT_VERSION)
    except (KeyError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata: {exc}") from exc
    return info, tensors


def load_into(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Copy tensors into `model`, failing with the list of missing, unexpected and reshaped tensors."""
    check_fit(model, tensors, path)
    expected = model.state_dict()
    model.load_state_dict({n: t.to(expected[n].dtype) for n, t in tensors.items()})


def check_fit(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """CheckpointError listing the missing, unexpected and reshaped tensors (works on a meta-device model)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    reshaped = [f"{n}: file {tuple(tensors[n].shape)} vs model {tuple(expected[n].shape)}"
                for n in expected if n in tensors and tensors[n].shape != expected[n].shape]
    if missing or unexpected or reshaped:
        parts = [f"{label}: {items[:5]}{' …' if len(items) > 5 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", reshaped))
                 if items]
        raise CheckpointError(f"checkpoint {path} does not fit the model ({'; '.join(parts)})")


def load_model(path: str | Path | None = None, kind: str = "vgii",
               preset: str | None = None) -> tuple[nn.Module, CheckpointInfo]:
    """Build and load the model in a checkpoint (None = the embedded default), in eval mode, fp32.

    `preset`, when given, must match the checkpoint's preset.
    """
    from mnm_core.model import JsrlModel, VgiiModel

    if path is None or str(path) == "":
        path = default_checkpoint_path()
        if not path.is_file():
            raise CheckpointError(
                f"no embedded default checkpoint at {path}; pass --checkpoint or train one (training/train.py)")
    info, tensors = read_checkpoint(path)
    if info.kind != kind:
        raise CheckpointError(f"checkpoint {path} holds a {info.kind!r} model, not a {kind!r} model")
    if preset is not None and info.preset != preset:
        raise CheckpointError(f"checkpoint {path} holds preset {info.preset!r}, but preset {preset!r} was asked for")
    network = VgiiModel if kind == "vgii" else JsrlModel
    with torch.device("meta"):  # shapes only: what the config asks for, before any memory is spent on it
        skeleton = network(info.model_config)
    size = sum(p.numel() for p in skeleton.parameters())
    if size > MAX_PARAMETERS:
        raise CheckpointError(f"checkpoint {path} asks for a {size:,}-parameter {kind} model (widths "
                              f"{info.model_config.widths}); mnm loads at most {MAX_PARAMETERS:,}")
    check_fit(skeleton, tensors, path)
    model = network(info.model_config)
    load_into(model, tensors, path)
    return model.eval(), info


__all__ = [
    "FORMAT_VERSION",
    "MAX_PARAMETERS",
    "CheckpointInfo",
    "check_fit",
    "default_checkpoint_path",
    "load_into",
    "load_model",
    "read_checkpoint",
    "save_checkpoint",
]
