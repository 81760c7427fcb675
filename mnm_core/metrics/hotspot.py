"""Warm-object AUC (`hotspot_auc`): does the pseudo-IR rank the real IR's warmest pixels first?

Per image, the positives are the real IR's warmest 5 % of pixels (IR ≥ its 95th percentile, numpy's
linear interpolation, so 8-bit ties may make it more than 5 %); the score is the ROC AUC of a score image
(the pseudo-IR, or a trivial guess) at separating them from the rest, computed as the Mann–Whitney U
statistic with tied scores given their average rank: 0.5 is chance, 1 means every warm pixel scores above
every other pixel. Unlike SSIM it cannot be won by a flat, dark output: a constant image scores 0.5.

Colour images are turned gray in floating point (0.299 R + 0.587 G + 0.114 B, no rounding), as the
independent reference implementation does (../shared/reference/README.md, values_hotspot.csv).
"""

from __future__ import annotations

import numpy as np

from mnm_core.errors import InputError

WARM_FRACTION = 0.05
"""The warmest fraction of IR pixels that count as warm objects."""
_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])


def float_gray(image: np.ndarray) -> np.ndarray:
    """H×W float64 of an H×W or H×W×3 image (0..255), gray without rounding."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return image.astype(np.float64) @ _GRAY_WEIGHTS
    if image.ndim != 2:
        raise InputError(f"expected an H×W or H×W×3 image, got shape {image.shape}")
    return image.astype(np.float64)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, tied values sharing their average rank (scipy's rankdata, numpy only)."""
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def hotspot_auc(score: np.ndarray, ir: np.ndarray, warm_fraction: float = WARM_FRACTION) -> float:
    """ROC AUC of `score` at ranking the warmest `warm_fraction` of `ir`'s pixels above the rest.

    NaN when the IR has no warm/non-warm split (a constant IR image).
    """
    score_gray, ir_gray = float_gray(score).ravel(), float_gray(ir).ravel()
    if score_gray.shape != ir_gray.shape:
        raise InputError(f"score image has {score_gray.size} pixels but the IR has {ir_gray.size}")
    positives = ir_gray >= np.percentile(ir_gray, 100.0 * (1.0 - warm_fraction))
    n_pos = int(positives.sum())
    n_neg = positives.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(score_gray)
    u_statistic = ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def trivial_guess_aucs(vis: np.ndarray, ir: np.ndarray) -> dict[str, float]:
    """hotspot_auc of the two trivial guesses: the visible gray itself and its inverse (255 − Y)."""
    vis_gray = float_gray(vis)
    return {"hotspot_auc_vis_y": hotspot_auc(vis_gray, ir), "hotspot_auc_inv_vis_y": hotspot_auc(255.0 - vis_gray, ir)}
