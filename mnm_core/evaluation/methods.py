"""The methods an evaluation compares, each a function of one visible image (and the real IR, which only
the `real-ir` upper bound may use):

- `visible`: the output is the visible image itself (lower bound: no infrared at all);
- `real-ir`: classical fusion with the *real* IR: per-pixel max of the visible luminance Y and the IR,
  recombined with the visible Cb/Cr (upper bound: the IR the model never sees);
- `model`: the mnm frame pipeline (`mnm_core.pipeline.Fuser`) on the visible image only, as in the
  missing-IR protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnm_core.errors import InputError

METHODS = ("visible", "real-ir", "model")
BASELINES = ("visible", "real-ir")
EVAL_BACKEND = "torch"
"""Backend of the model in evaluations unless one is asked for: fp32 torch, the reference numerics, no
ONNX export needed (the node's default, onnxruntime, agrees with it to about 1e-5; test_backends.py)."""


@dataclass
class MethodOutput:
    """What a method produces for one image: the fused image (layout of vis) and maybe a pseudo-IR (H×W)."""

    fused: np.ndarray
    pseudo_ir: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    """The pipeline's timings ('total', 'inference'; model only)."""


Method = Callable[[np.ndarray, np.ndarray | None], MethodOutput]
"""(vis RGB or gray uint8, ir uint8 H×W or None) → MethodOutput. Methods that obey the missing-IR protocol
ignore `ir`."""


def fuse_visible(vis: np.ndarray, ir: np.ndarray | None) -> MethodOutput:
    """The `visible` baseline: the visible image unchanged."""
    return MethodOutput(vis.copy())


def fuse_real_ir(vis: np.ndarray, ir: np.ndarray | None) -> MethodOutput:
    """The `real-ir` baseline: max(Y_vis, IR) with the visible chroma (BT.601 full range)."""
    if ir is None:
        raise InputError("the real-ir baseline needs the real IR")
    if vis.ndim == 2:
        return MethodOutput(np.maximum(vis, ir))
    from mnm_core.colour import rgb_to_ycbcr, ycbcr_to_rgb

    ycbcr = rgb_to_ycbcr(vis.astype(np.float32) / 255.0)
    ycbcr[..., 0] = np.maximum(ycbcr[..., 0], ir.astype(np.float32) / 255.0)
    return MethodOutput(np.floor(ycbcr_to_rgb(ycbcr) * 255.0 + 0.5).astype(np.uint8))


class ModelMethod:
    """The mnm pipeline as a method: sees the visible image only. Close it (or use `with`) when done."""

    def __init__(self, checkpoint: str | Path | None = None, backend: str = EVAL_BACKEND,
                 text_encoder: str = "auto", precision: str = "auto", max_side: int | None = None) -> None:
        """text_encoder: 'auto' = the encoder the checkpoint was trained with; 'none' = identity modulation.
        The modulation is computed synchronously for every image, so results are reproducible.
        No checkpoint: the embedded model this machine would run (mnm_core.machine).
        max_side: the fast path's working size (`PipelineConfig.max_side`); None = the pipeline's default."""
        from mnm_core.config import PipelineConfig, TextConfig
        from mnm_core.pipeline import Fuser

        config = PipelineConfig(checkpoint=str(checkpoint or ""), backend=backend, precision=precision,
                                max_side=PipelineConfig().max_side if max_side is None else max_side)
        text = None if text_encoder == "auto" else TextConfig(encoder=text_encoder)
        self.fuser = Fuser.from_config(config, text, synchronous=True)
        self.text_encoder = str(self.fuser.modulation_source.stats().get("encoder", "none"))
        """Fingerprint of the text encoder in use ('none': identity modulation)."""

    def __call__(self, vis: np.ndarray, ir: np.ndarray | None) -> MethodOutput:
        result = self.fuser.process(vis, layout="gray" if vis.ndim == 2 else "rgb")
        return MethodOutput(result.fused, result.pseudo_ir, dict(result.timings_ms))

    def close(self) -> None:
        self.fuser.close()

    def __enter__(self) -> ModelMethod:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["BASELINES", "EVAL_BACKEND", "METHODS", "Method", "MethodOutput", "ModelMethod", "fuse_real_ir",
           "fuse_visible"]
