"""The trivial pseudo-IR guesses, and the scores that compare a pseudo-IR with them.

A pseudo-IR is only worth having where it beats two guesses that need no model: the visible Y itself
and its inverse 1 − Y (daytime thermal scenes often invert the visible one: dark sky, warm road).
Every evaluation (`mnm eval`, `mnm bag-eval`) scores both on the same three scores as the model's
pseudo-IR: PSNR, SSIM and the warm-object AUC `hotspot_auc` (mnm_core/metrics/hotspot.py).
"""

from __future__ import annotations

import numpy as np

from mnm_core.metrics import PSEUDO_IR_KEYS, pseudo_ir_scores, to_gray
from mnm_core.metrics.hotspot import hotspot_auc, trivial_guess_aucs

PSEUDO_IR_SCORES = (*PSEUDO_IR_KEYS, "hotspot_auc")
"""Scores of the model's pseudo-IR against the real IR: PSNR (dB), SSIM, warm-object AUC."""
GUESSES = {"vis_y": "visible Y", "inv_vis_y": "1 − Y"}
"""The trivial pseudo-IR guesses scored beside every method: key suffix → label."""
GUESS_KEYS = tuple(f"{key}_{guess}" for guess in GUESSES for key in PSEUDO_IR_SCORES)
"""The guesses' scores, e.g. `pseudo_ir_ssim_vis_y`, `hotspot_auc_inv_vis_y`."""


def pseudo_ir_comparison(vis: np.ndarray, ir: np.ndarray, pseudo_ir: np.ndarray | None = None) -> dict[str, float]:
    """PSNR, SSIM and hotspot_auc of `pseudo_ir` (if given) and of the two trivial guesses, against `ir`.

    vis: uint8 H×W or H×W×3 (RGB); ir, pseudo_ir: uint8 H×W. The guesses' PSNR/SSIM score MATLAB's
    `rgb2gray` Y (uint8) and 255 − Y; their hotspot_auc uses the unrounded gray of `trivial_guess_aucs`,
    as the reference values do.
    """
    scores: dict[str, float] = {}
    if pseudo_ir is not None:
        scores.update(pseudo_ir_scores(pseudo_ir, ir))
        scores["hotspot_auc"] = hotspot_auc(pseudo_ir, ir)
    y = to_gray(vis)
    for guess, image in (("vis_y", y), ("inv_vis_y", 255 - y)):
        scores.update({f"{key}_{guess}": value for key, value in pseudo_ir_scores(image, ir).items()})
    scores.update(trivial_guess_aucs(vis, ir))
    return scores


def guess_means(mean: dict[str, float | None]) -> dict[str, dict[str, float | None]]:
    """A `mean` dict regrouped for the pseudo-IR table: 'model' (if it has a pseudo-IR), 'visible Y', '1 − Y'
    → {pseudo_ir_psnr, pseudo_ir_ssim, hotspot_auc}."""
    table = {"model": {key: mean.get(key) for key in PSEUDO_IR_SCORES}} if PSEUDO_IR_SCORES[0] in mean else {}
    for guess, label in GUESSES.items():
        table[label] = {key: mean.get(f"{key}_{guess}") for key in PSEUDO_IR_SCORES}
    return table


__all__ = ["GUESSES", "GUESS_KEYS", "PSEUDO_IR_SCORES", "guess_means", "pseudo_ir_comparison"]
