"""A checkpoint made deployable (`mnm export`): its fast path as ONNX, and a TensorRT engine where asked.

Sits above `mnm_core.export` (the ONNX contract) and `mnm_core.backends.tensorrt_backend` (engines),
which uses the former: keeping the orchestration here keeps the two free of an import circle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mnm_core.config import PRESETS
from mnm_core.errors import ExportError
from mnm_core.export import OnnxMetadata, export_onnx, read_metadata

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What `export_fast_path` wrote."""

    onnx: Path
    metadata: OnnxMetadata
    engine: Path | None = None
    """The TensorRT engine, when one was asked for."""


def export_fast_path(out: str | Path, checkpoint: str = "", preset: str = "", precision: str = "fp32",
                     sizes: list[tuple[int, int]] | None = None, engine: str = "",
                     device: str = "cuda") -> ExportResult:
    """Export a checkpoint's fast path (default: the embedded one) to ONNX at `out` (`mnm export`).

    preset: export an UNTRAINED model of that preset instead (timing and deployment tests; logged as
    such). sizes: as `export_onnx`. engine: also build a TensorRT engine there, on `device`. MnmError
    subclasses for every failure, the ONNX file kept when only the engine fails.
    """
    if checkpoint and preset:
        raise ExportError("give a checkpoint or a preset, not both")
    if preset:
        from mnm_core.model import VgiiModel

        if preset not in PRESETS:
            raise ExportError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        model = VgiiModel(PRESETS[preset]).eval()
        LOGGER.warning("exporting an untrained %s model (zero dictionary): its outputs are meaningless", preset)
    else:
        from mnm_core.checkpoint import load_model

        model, info = load_model(checkpoint or None)
        preset = info.preset
    path = export_onnx(model, out, precision=precision, sizes=sizes, preset=preset)
    built = None
    if engine:
        from mnm_core.backends.tensorrt_backend import build_engine_file

        built = build_engine_file(path, engine, sizes=sizes, device=device)
    return ExportResult(path, read_metadata(path), built)


__all__ = ["ExportResult", "export_fast_path"]
