"""The frame pipeline (no ROS): a camera frame in, pseudo-IR and fused frame out.

`Fuser` owns an inference backend (fast path) and a modulation source (slow path). Per frame it
converts to Y/Cb/Cr, brings Y to the working size (`PipelineConfig.max_side`), pads it to the size
multiple, runs the fast path with the current (γ, β), crops, brings the outputs back to the frame's
size and puts the fused Y back with the visible chroma.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from mnm_core.backends import InferenceBackend
from mnm_core.colour import crop_to, pad_to_multiple, rgb_to_ycbcr, ycbcr_to_rgb
from mnm_core.config import PipelineConfig, TextConfig
from mnm_core.errors import ConfigError, InputError
from mnm_core.frames import LAYOUTS, Layout
from mnm_core.machine import Deployment
from mnm_core.modulation import Modulation, ModulationSource
from mnm_core.working_size import to_frame_size, to_working_size

LOGGER = logging.getLogger(__name__)


@dataclass
class FuserResult:
    """One processed frame."""

    pseudo_ir: np.ndarray
    """H×W uint8 pseudo-infrared image."""
    fused: np.ndarray
    """Fused image, same shape and layout as the input frame, uint8."""
    timings_ms: dict[str, float]
    """'preprocess', 'inference', 'postprocess', 'total' (ms)."""
    modulation: Modulation
    """The (γ, β) used for this frame."""


def check_frame(frame: np.ndarray, layout: str) -> np.ndarray:
    """Validate a frame and return it as H×W (gray) or H×W×3 uint8; raises InputError otherwise."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; use one of {list(LAYOUTS)}")
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame must be uint8, got {frame.dtype}")
    if layout == "gray" and frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    expected = 2 if layout == "gray" else 3
    if frame.ndim != expected or (expected == 3 and frame.shape[2] != 3):
        want = "H×W" if layout == "gray" else "H×W×3"
        raise InputError(f"a {layout} frame must be {want}, got shape {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError(f"frame is empty ({frame.shape[0]}×{frame.shape[1]})")
    return frame


def text_config_for(trained_with: str) -> TextConfig:
    """The text configuration matching a checkpoint's encoder fingerprint: `none`, or the embedded
    default encoder; any other encoder needs its own configuration (model directory, server)."""
    if trained_with == "none":
        return TextConfig(encoder="none")
    from mnm_core.text import encoder_fingerprint

    default = TextConfig()
    if trained_with == encoder_fingerprint(default):
        return default
    raise ConfigError(f"the checkpoint's modulation heads were trained with text encoder {trained_with!r}; "
                      "configure that encoder explicitly, or use text encoder 'none'")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float → uint8 with rounding."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class Fuser:
    """Frame → (pseudo-IR, fused). Not thread-safe: call `process` from one thread."""

    def __init__(self, backend: InferenceBackend, modulation_source: ModulationSource | None = None,
                 synchronous: bool = False, deployment: Deployment | None = None, max_side: int = 0) -> None:
        """`synchronous`: compute the modulation of every frame before its fast path (evaluation,
        reproducible), instead of refreshing it in the background at its own period (live use).
        `deployment`: what `from_config` chose for this machine (None when the backend was built by hand).
        `max_side`: the longest side the fast path runs at (`PipelineConfig.max_side`; 0 = the frame's own)."""
        self.backend = backend
        self.max_side = max_side
        self.deployment = deployment
        self.modulation_source = modulation_source or ModulationSource(backend.n_atoms)
        self.synchronous = synchronous
        if not synchronous:
            self.modulation_source.start()

    @classmethod
    def from_config(cls, pipeline: PipelineConfig | None = None, text: TextConfig | None = None,
                    synchronous: bool = False) -> Fuser:
        """Load the checkpoint (the embedded default when none is given), its backend and text encoder.

        `text` None means the encoder the checkpoint was trained with (see `text_config_for`).
        """
        from mnm_core.backends import create_backend
        from mnm_core.checkpoint import load_model
        from mnm_core.machine import embedded_checkpoint, resolve_device, resolve_precision, usable_cores

        pipeline = pipeline or PipelineConfig()
        device = resolve_device(pipeline)
        checkpoint = pipeline.checkpoint or str(embedded_checkpoint(pipeline.model, device))
        model, info = load_model(checkpoint)
        precision = resolve_precision(pipeline, device, model)
        deployment = Deployment(checkpoint, info.preset, pipeline.backend, precision, device,
                                pipeline.threads or usable_cores())
        text = text or text_config_for(info.text_encoder)
        backend = create_backend(pipeline.backend, model, precision=precision, device=device,
                                 onnx_path=pipeline.onnx_path, cache_dir=pipeline.engine_cache_dir,
                                 threads=deployment.threads)
        if text.encoder == "none":
            source = ModulationSource(backend.n_atoms)
        else:
            from mnm_core.text import create_modulation_source

            source = create_modulation_source(model, info, text)
        LOGGER.info("fuser ready: %s, text encoder %s", deployment.describe(), text.encoder)
        return cls(backend, source, synchronous=synchronous, deployment=deployment, max_side=pipeline.max_side)

    def process(self, frame: np.ndarray, layout: Layout = "rgb") -> FuserResult:
        start = time.perf_counter()
        frame = check_frame(frame, layout)
        if layout == "gray":
            y = frame.astype(np.float32) / 255.0
            rgb = np.repeat(y[:, :, None], 3, axis=2)
            ycbcr = None
        else:
            rgb = frame.astype(np.float32) / 255.0
            if layout == "bgr":
                rgb = rgb[:, :, ::-1]
            ycbcr = rgb_to_ycbcr(rgb)
            y = ycbcr[:, :, 0].copy()  # a copy: the slow path keeps it while ycbcr gets the fused Y
        self.modulation_source.observe(rgb, y)
        if self.synchronous:
            self.modulation_source.refresh()
        modulation = self.modulation_source.current()
        y_work = to_working_size(y, self.max_side)
        y_in = pad_to_multiple(y_work)[None, None]
        prepared = time.perf_counter()
        pseudo_ir, fused_y = self.backend.run(y_in, modulation.gamma, modulation.beta)
        inferred = time.perf_counter()
        pseudo_ir, fused_y = to_frame_size(crop_to(pseudo_ir[0, 0], *y_work.shape),
                                           crop_to(fused_y[0, 0], *y_work.shape), y_work, y)
        if ycbcr is None:
            fused = to_uint8(fused_y)
        else:
            ycbcr[:, :, 0] = fused_y
            fused_rgb = ycbcr_to_rgb(ycbcr)
            fused = to_uint8(fused_rgb[:, :, ::-1] if layout == "bgr" else fused_rgb)
        done = time.perf_counter()
        timings = {
            "preprocess": (prepared - start) * 1e3,
            "inference": (inferred - prepared) * 1e3,
            "postprocess": (done - inferred) * 1e3,
            "total": (done - start) * 1e3,
        }
        return FuserResult(to_uint8(pseudo_ir), np.ascontiguousarray(fused), timings, modulation)

    def close(self) -> None:
        self.modulation_source.stop()

    def __enter__(self) -> Fuser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["LAYOUTS", "Fuser", "FuserResult", "Layout", "check_frame", "text_config_for", "to_uint8"]
