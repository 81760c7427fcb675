"""Defaults per machine: which embedded model, device, precision and thread count the pipeline uses.

`PipelineConfig` keeps `auto` in `model`, `device` and `precision` (and 0 threads) until a Fuser is
built; `resolve_device` and `resolve_precision` turn them into concrete choices for the machine at
hand, and `Deployment` records what was chosen and why (logged, and shown in the node's /diagnostics):

- device auto: CUDA where the backend can use it (torch: torch.cuda; onnxruntime: its CUDA execution
  provider; tensorrt: always CUDA), else the CPU;
- model auto (empty checkpoint): the best shipped model for the device (AUTO_MODELS): `fast` on a CPU and,
  until a better `small` is shipped, on CUDA too;
- precision auto: on a CPU with onnxruntime, int8 when a calibrated int8 file of exactly these weights
  is shipped (int8 was accepted only within 0.01 SSIM of fp32 on the validation split, docs/benchmarks.md),
  else fp32; fp16 on CUDA;
- threads 0: as many as the cores this process may run on (its CPU affinity, e.g. a container's cpuset),
  not the machine's total.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mnm_core.config import PipelineConfig

if TYPE_CHECKING:
    from mnm_core.model import VgiiModel

LOGGER = logging.getLogger(__name__)

AUTO_MODELS: dict[str, tuple[str, ...]] = {"cpu": ("fast", "small"), "cuda": ("fast", "small")}
"""The embedded models `model: auto` takes, best first, per device: the first one shipped. `fast` leads on
CUDA too: the shipped `small`, trained on a CPU for less time, scores below it on every test set (README
"Results"). A `small` that beats it there (the GPU run's) goes first on CUDA."""


def usable_cores() -> int:
    """The number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cuda_usable(backend: str) -> bool:
    """Whether `backend` can run on a CUDA GPU here (without importing more than it needs)."""
    if backend == "tensorrt":
        return True
    if backend == "onnxruntime":
        try:
            import onnxruntime
        except ImportError:
            return False
        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    import torch

    return torch.cuda.is_available()


def resolve_device(pipeline: PipelineConfig) -> str:
    """The concrete device: `pipeline.device`, or for auto CUDA where the backend can use it, else cpu."""
    if pipeline.device != "auto":
        return pipeline.device
    return "cuda" if cuda_usable(pipeline.backend) else "cpu"


def embedded_checkpoint(model: str, device: str) -> Path:
    """The shipped checkpoint for `model`; for auto, the first of the device's AUTO_MODELS that is shipped
    (the first one's path when none is)."""
    from mnm_core.checkpoint import default_checkpoint_path

    if model != "auto":
        return default_checkpoint_path(model)
    candidates = [default_checkpoint_path(name) for name in AUTO_MODELS["cuda" if device.startswith("cuda") else "cpu"]]
    shipped = next((path for path in candidates if path.is_file()), candidates[0])
    if shipped != candidates[0]:
        LOGGER.info("the embedded %s is not shipped; using %s", candidates[0].name, shipped.name)
    return shipped


def resolve_precision(pipeline: PipelineConfig, device: str, model: VgiiModel) -> str:
    """The concrete precision: `pipeline.precision`, or for auto int8 (CPU, onnxruntime, a shipped int8
    file of `model`'s weights), fp16 on CUDA, else fp32. The weights are hashed only when a shipped int8
    file is there to compare with."""
    if pipeline.precision != "auto":
        return pipeline.precision
    if device.startswith("cuda"):
        return "fp16"
    if pipeline.backend == "onnxruntime" and not pipeline.onnx_path:
        from mnm_core.export import model_hash, preset_of
        from mnm_core.quantize import is_int8_of, shipped_int8_path

        shipped = shipped_int8_path(preset_of(model.config))
        if shipped.is_file() and is_int8_of(shipped, model_hash(model)):
            return "int8"
    return "fp32"


@dataclass(frozen=True)
class Deployment:
    """What the pipeline runs on this machine: shown in the log and the node's diagnostics."""

    checkpoint: str
    preset: str
    backend: str
    precision: str
    device: str
    threads: int

    def as_info(self) -> dict[str, str]:
        """String key/values for /diagnostics."""
        return {"model": f"{self.preset} ({Path(self.checkpoint).name})", "precision": self.precision,
                "device": self.device, "threads": str(self.threads)}

    def describe(self) -> str:
        return (f"model {self.preset} ({Path(self.checkpoint).name}), {self.backend} {self.precision} on "
                f"{self.device}, {self.threads} threads")


__all__ = ["AUTO_MODELS", "Deployment", "cuda_usable", "embedded_checkpoint", "resolve_device",
           "resolve_precision", "usable_cores"]
