"""Fusion metrics as the VIFB benchmark computes them, and pseudo-IR similarity scores.

Public API (stable; the evaluation command and the bag evaluation call it):

- `fusion_metrics(vis, ir, fused, mode="vifb")` → {"AG", "CE", "EI", "EN", "Qcb", "SF"} floats;
- `fused_image_scores(vis, ir, fused, mode="vifb")` → the same plus `FUSED_WARM_KEY`;
- `pseudo_ir_scores(pseudo_ir, ir)` → {"pseudo_ir_psnr", "pseudo_ir_ssim"};
- `hotspot_auc(score, ir)` (warm-object AUC) and `trivial_guess_aucs(vis, ir)`;
- `rgb2gray` (MATLAB's), `METRIC_KEYS`, `FUSED_WARM_KEY`, `MODES`, `HIGHER_IS_BETTER`.

Modes: `vifb` scores colour images per channel and averages, exactly as VIFB's MATLAB code; `gray`
first converts every H×W×3 image to 8-bit gray with MATLAB's `rgb2gray`, as papers that report on
luminance do. Values agree with VIFB's own code (see test/test_metrics.py and ../shared/reference).
"""

from __future__ import annotations

import numpy as np

from mnm_core.errors import InputError
from mnm_core.metrics.hotspot import hotspot_auc, trivial_guess_aucs
from mnm_core.metrics.similarity import psnr, ssim
from mnm_core.metrics.vifb import (
    avg_gradient,
    chen_blum,
    cross_entropy,
    edge_intensity,
    entropy,
    rgb2gray,
    spatial_frequency,
)

METRIC_KEYS = ("AG", "CE", "EI", "EN", "Qcb", "SF")
"""The six fusion metrics, in the order of the paper's tables."""
FUSED_WARM_KEY = "fused_hotspot_auc"
"""hotspot_auc of the fused image itself: do the real IR's warm objects stand out in it? (the visible
image alone scores the guess Y's hotspot_auc; an infrared–visible fusion is there to do better)."""
PSEUDO_IR_KEYS = ("pseudo_ir_psnr", "pseudo_ir_ssim")
MODES = ("vifb", "gray")
HIGHER_IS_BETTER = {"AG": True, "CE": False, "EI": True, "EN": True, "Qcb": True, "SF": True,
                    "pseudo_ir_psnr": True, "pseudo_ir_ssim": True, FUSED_WARM_KEY: True}


def _check_image(name: str, image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"{name} must be a uint8 numpy array (0..255), got {dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InputError(f"{name} must be H×W or H×W×3, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"{name} is {image.shape[0]}×{image.shape[1]}; the metrics need at least 2×2 pixels")
    return image


def _check_triple(vis: np.ndarray, ir: np.ndarray, fused: np.ndarray) -> tuple[np.ndarray, ...]:
    images = tuple(_check_image(n, a) for n, a in (("vis", vis), ("ir", ir), ("fused", fused)))
    sizes = {a.shape[:2] for a in images}
    if len(sizes) != 1:
        raise InputError("vis, ir and fused differ in size: " + ", ".join(f"{a.shape[0]}×{a.shape[1]}" for a in images))
    return images


def to_gray(image: np.ndarray) -> np.ndarray:
    """H×W×3 → MATLAB `rgb2gray` uint8; H×W unchanged."""
    return rgb2gray(image) if image.ndim == 3 else image


def fusion_metrics(vis: np.ndarray, ir: np.ndarray, fused: np.ndarray, mode: str = "vifb") -> dict[str, float]:
    """AG, CE, EI, EN, Qcb and SF of a fused image, as VIFB's MATLAB code computes them.

    vis, ir, fused: uint8 arrays of the same H×W, each H×W or H×W×3 (RGB; channel order only matters
    in `gray` mode). mode: "vifb" (per channel, averaged) or "gray" (all converted by `rgb2gray` first).
    Qcb is NaN where it is undefined (e.g. constant images); every other value is finite.
    About 0.2–0.4 s for a 640×480 colour triple on one CPU core.
    """
    if mode not in MODES:
        raise InputError(f"unknown metric mode {mode!r}; choose one of {', '.join(MODES)}")
    vis, ir, fused = _check_triple(vis, ir, fused)
    if mode == "gray":
        vis, ir, fused = to_gray(vis), to_gray(ir), to_gray(fused)
    return {
        "AG": avg_gradient(fused),
        "CE": cross_entropy(vis, ir, fused),
        "EI": edge_intensity(fused),
        "EN": entropy(fused),
        "Qcb": chen_blum(vis, ir, fused),
        "SF": spatial_frequency(fused),
    }


def fused_image_scores(vis: np.ndarray, ir: np.ndarray, fused: np.ndarray, mode: str = "vifb") -> dict[str, float]:
    """What a fused image is scored on beside a real IR: the six `fusion_metrics` and `FUSED_WARM_KEY`
    (hotspot_auc of the fused image's unrounded gray)."""
    return {**fusion_metrics(vis, ir, fused, mode=mode), FUSED_WARM_KEY: hotspot_auc(fused, ir)}


def pseudo_ir_scores(pseudo_ir: np.ndarray, ir: np.ndarray) -> dict[str, float]:
    """PSNR (dB, peak 255) and SSIM (MATLAB `ssim` defaults) of a pseudo-IR against the real IR.

    Both uint8, same H×W; an H×W×3 image is turned gray by `rgb2gray` first (equal channels stay exact).
    """
    pseudo_ir = to_gray(_check_image("pseudo_ir", pseudo_ir))
    ir = to_gray(_check_image("ir", ir))
    if pseudo_ir.shape != ir.shape:
        raise InputError(f"pseudo_ir is {pseudo_ir.shape[0]}×{pseudo_ir.shape[1]} "
                         f"but ir is {ir.shape[0]}×{ir.shape[1]}")
    return {"pseudo_ir_psnr": psnr(pseudo_ir, ir), "pseudo_ir_ssim": ssim(pseudo_ir, ir)}


__all__ = [
    "FUSED_WARM_KEY",
    "HIGHER_IS_BETTER",
    "METRIC_KEYS",
    "MODES",
    "PSEUDO_IR_KEYS",
    "fused_image_scores",
    "fusion_metrics",
    "hotspot_auc",
    "pseudo_ir_scores",
    "rgb2gray",
    "to_gray",
    "trivial_guess_aucs",
]
