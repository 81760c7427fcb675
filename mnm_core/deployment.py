"""A checkpoint made deployable (`mnm export`): its fast path as ONNX (fp32, fp16, or int8 quantised from
the fp32 export), and a TensorRT engine where asked.

Sits above `mnm_core.export` (the ONNX contract) and `mnm_core.backends.tensorrt_backend` (engines),
which uses the former: keeping the orchestration here keeps the two free of an import circle.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mnm_core.config import PRESETS
from mnm_core.errors import DataError, ExportError
from mnm_core.export import OnnxMetadata, check_writable, export_onnx, read_metadata

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
                     device: str = "cuda", calibration: Sequence[str | Path] = ()) -> ExportResult:
    """Export a checkpoint's fast path (default: the embedded one) to ONNX at `out` (`mnm export`).

    preset: export an UNTRAINED model of that preset instead (timing and deployment tests; logged as
    such). precision: fp32, fp16, or int8 (the fp32 export quantised, calibrated on frames of the
    `calibration` folders, default the training sets: `mnm_core.quantize`). sizes: as `export_onnx`.
    engine: also build a TensorRT engine there, on `device` (not for int8). MnmError subclasses for every
    failure, the ONNX file kept when only the engine fails.
    """
    if checkpoint and preset:
        raise ExportError("give a checkpoint or a preset, not both")
    if calibration and precision != "int8":
        raise ExportError("calibration folders are for int8 exports only (--int8)")
    if engine:
        from mnm_core.backends.tensorrt_backend import check_precision

        check_precision(precision)
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
    if precision == "int8":
        path = _export_int8(model, Path(out), sizes, preset, calibration)
    else:
        path = export_onnx(model, out, precision=precision, sizes=sizes, preset=preset)
    built = None
    if engine:
        from mnm_core.backends.tensorrt_backend import build_engine_file

        built = build_engine_file(path, engine, sizes=sizes, device=device)
    return ExportResult(path, read_metadata(path), built)


def _export_int8(model, out: Path, sizes: list[tuple[int, int]] | None, preset: str,
                 calibration: Sequence[str | Path]) -> Path:
    """The fp32 export, in a temporary file, quantised to `out`; calibration crops of the export's first
    fixed size (a static graph takes no other), else of the default calibration size."""
    from mnm_core.calibration import CALIBRATION_SIZE, calibration_images, default_calibration_folders
    from mnm_core.quantize import calibration_samples, quantize_int8

    check_writable(out)  # before the export and the calibration: a bad --out fails at once
    folders = list(calibration) or default_calibration_folders()
    if not folders:
        raise DataError("int8 needs calibration frames: pass --calibration DIR (camera frames, or a vis/+ir/ pair "
                        "folder); the default, the training sets under ../shared/data, is not on this machine")
    samples = calibration_samples(model, calibration_images(folders, size=sizes[0] if sizes else CALIBRATION_SIZE))
    with tempfile.TemporaryDirectory(prefix="mnm-export-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", sizes=sizes, preset=preset)
        return quantize_int8(fp32, out, samples)


__all__ = ["ExportResult", "export_fast_path"]
