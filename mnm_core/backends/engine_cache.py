"""TensorRT engine cache: which engine fits which (ONNX file, TensorRT, GPU, precision, profile).

An engine is only valid for the exact ONNX graph, TensorRT version and GPU model it was built with.
Each cached engine `X.engine` has a JSON sidecar `X.json` holding its `EngineKey`; the file name holds
a digest of the key, so a changed key means a new file, and a stale or foreign engine is rebuilt.
None of this needs TensorRT, so it is tested everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from mnm_core.errors import BackendError

LOGGER = logging.getLogger(__name__)

Size = tuple[int, int]
Profile = tuple[Size, Size, Size]
"""TensorRT optimization profile for the input y: (min, opt, max) H×W."""

DEFAULT_PROFILE: Profile = ((64, 64), (512, 640), (1088, 1920))
"""For a dynamic export with no sizes given: anything from 64×64 to 1080p (padded), tuned for 640×512."""


@dataclass(frozen=True)
class EngineKey:
    """Everything a TensorRT engine depends on."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    """e.g. '8.7' (Jetson Orin), '9.0' (H100)."""
    precision: str
    profile: Profile

    def digest(self) -> str:
        """A short stable hash of the whole key (part of the engine's file name)."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EngineKey:
        profile = tuple(tuple(int(v) for v in size) for size in data["profile"])
        if len(profile) != 3 or any(len(size) != 2 for size in profile):
            raise ValueError(f"profile must be three H×W sizes, got {data['profile']!r}")
        return cls(onnx_sha256=str(data["onnx_sha256"]), tensorrt_version=str(data["tensorrt_version"]),
                   gpu_name=str(data["gpu_name"]), compute_capability=str(data["compute_capability"]),
                   precision=str(data["precision"]), profile=profile)  # type: ignore[arg-type]


def profile_for(sizes: list[Size] | tuple[Size, ...] | None) -> Profile:
    """Optimization profile covering `sizes` (opt = the first one); the default range when none."""
    if not sizes:
        return DEFAULT_PROFILE
    heights = [h for h, _ in sizes]
    widths = [w for _, w in sizes]
    return (min(heights), min(widths)), tuple(sizes[0]), (max(heights), max(widths))  # type: ignore[return-value]


def in_profile(profile: Profile, height: int, width: int) -> bool:
    (min_h, min_w), _, (max_h, max_w) = profile
    return min_h <= height <= max_h and min_w <= width <= max_w


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "unknown"


def engine_path(cache_dir: str | Path, key: EngineKey) -> Path:
    """Where the engine for `key` lives in the cache."""
    name = f"vgii-{key.onnx_sha256[:12]}-{key.precision}-{_slug(key.gpu_name)}-{key.digest()}.engine"
    return Path(cache_dir) / "engines" / name


def timing_cache_path(cache_dir: str | Path, key: EngineKey) -> Path:
    """TensorRT's timing cache, shared by every engine built with one TensorRT version on one GPU model."""
    name = f"timing-trt{key.tensorrt_version}-{_slug(key.gpu_name)}-sm{key.compute_capability}.cache"
    return Path(cache_dir) / "engines" / name


def sidecar_path(engine: str | Path) -> Path:
    return Path(engine).with_suffix(".json")


def write_engine(engine: str | Path, data: bytes, key: EngineKey, build_s: float) -> Path:
    """Write a serialised engine and its sidecar, each atomically (sidecar last: it marks completion)."""
    engine = Path(engine)
    engine.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine.with_name(engine.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(engine)
    sidecar = {"key": key.as_dict(), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "build_s": round(build_s, 1), "engine_bytes": len(data)}
    tmp = engine.with_name(engine.name + ".json.tmp")
    tmp.write_text(json.dumps(sidecar, indent=2) + "\n")
    tmp.replace(sidecar_path(engine))
    return engine


def read_sidecar(engine: str | Path) -> EngineKey | None:
    """The key an engine was built for; None when the sidecar is missing or unreadable."""
    path = sidecar_path(engine)
    try:
        return EngineKey.from_dict(json.loads(path.read_text())["key"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        LOGGER.warning("engine sidecar %s is unreadable (%s)", path, exc)
        return None


def differences(wanted: EngineKey, found: EngineKey) -> list[str]:
    """Human-readable reasons an engine built for `found` cannot serve `wanted`."""
    reasons = []
    if found.tensorrt_version != wanted.tensorrt_version:
        reasons.append(f"built with TensorRT {found.tensorrt_version}, this is TensorRT {wanted.tensorrt_version}")
    if (found.gpu_name, found.compute_capability) != (wanted.gpu_name, wanted.compute_capability):
        reasons.append(f"built for {found.gpu_name} (sm {found.compute_capability}), this GPU is "
                       f"{wanted.gpu_name} (sm {wanted.compute_capability})")
    if found.onnx_sha256 != wanted.onnx_sha256:
        reasons.append("built from another ONNX file (the model changed)")
    if found.precision != wanted.precision:
        reasons.append(f"built for {found.precision}, {wanted.precision} asked for")
    if found.profile != wanted.profile:
        reasons.append(f"built for sizes {format_profile(found.profile)}, {format_profile(wanted.profile)} asked for")
    return reasons


def format_profile(profile: Profile) -> str:
    """'W×H..W×H (opt W×H)', resolutions written as cameras name them."""
    (min_h, min_w), (opt_h, opt_w), (max_h, max_w) = profile
    return f"{min_w}×{min_h}..{max_w}×{max_h} (opt {opt_w}×{opt_h})"


def check_engine_file(engine: str | Path, wanted: EngineKey) -> None:
    """For an engine file the user named: raise BackendError saying what to do unless it fits `wanted`."""
    engine = Path(engine)
    rebuild = f"rebuild it on this machine with `mnm export --engine {engine}` (or leave engine_path empty " \
              "to use the engine cache, which rebuilds by itself)"
    if not engine.is_file():
        raise BackendError(f"TensorRT engine {engine} does not exist; {rebuild}")
    found = read_sidecar(engine)
    if found is None:
        raise BackendError(f"TensorRT engine {engine} has no readable sidecar {sidecar_path(engine).name}, so "
                           f"what it was built for is unknown; {rebuild}")
    reasons = differences(wanted, found)
    if reasons:
        raise BackendError(f"TensorRT engine {engine} does not fit: {'; '.join(reasons)}; {rebuild}")


def cached_engine(cache_dir: str | Path, wanted: EngineKey) -> Path | None:
    """The cached engine for `wanted` if one exists with a matching sidecar, else None (build one)."""
    engine = engine_path(cache_dir, wanted)
    if not engine.is_file():
        return None
    found = read_sidecar(engine)
    if found is None:
        LOGGER.warning("cached engine %s has no valid sidecar; rebuilding", engine)
        return None
    reasons = differences(wanted, found)
    if reasons:
        LOGGER.warning("cached engine %s is stale (%s); rebuilding", engine, "; ".join(reasons))
        return None
    return engine


__all__ = [
    "DEFAULT_PROFILE",
    "EngineKey",
    "Profile",
    "cached_engine",
    "check_engine_file",
    "differences",
    "engine_path",
    "format_profile",
    "in_profile",
    "profile_for",
    "read_sidecar",
    "sidecar_path",
    "timing_cache_path",
    "write_engine",
]
