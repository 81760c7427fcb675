"""Warm-object AUC: the independent reference values, and its defining properties on made-up images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mnm_core.errors import InputError
from mnm_core.metrics.hotspot import hotspot_auc, trivial_guess_aucs
from mnm_core.pairs import read_image

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "metrics"
CSV = REFERENCE / "values_hotspot.csv"


def _rows() -> list[dict[str, str]]:
    if not CSV.is_file():
        return []
    with CSV.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.skipif(not CSV.is_file(), reason=f"reference values not found at {CSV}")
@pytest.mark.parametrize("row", _rows(), ids=lambda r: Path(r["score"]).stem)
def test_matches_reference_implementation(row: dict[str, str]) -> None:
    vis, ir, score = (read_image(REFERENCE / row[key]) for key in ("vis", "ir", "score"))
    guesses = trivial_guess_aucs(vis, ir)
    assert hotspot_auc(score, ir) == pytest.approx(float(row["auc_score"]), abs=1e-6)
    assert guesses["hotspot_auc_vis_y"] == pytest.approx(float(row["auc_vis_y"]), abs=1e-6)
    assert guesses["hotspot_auc_inv_vis_y"] == pytest.approx(float(row["auc_inv_vis_y"]), abs=1e-6)


def test_perfect_flat_and_inverted_scores() -> None:
    ir = np.random.default_rng(0).integers(0, 256, (40, 50)).astype(np.uint8)
    assert hotspot_auc(ir, ir) == pytest.approx(1.0)
    assert hotspot_auc(255 - ir, ir) == pytest.approx(0.0)
    assert hotspot_auc(np.full_like(ir, 30), ir) == pytest.approx(0.5)  # a flat dark output is chance


def test_ties_are_averaged_and_only_order_matters() -> None:
    ir = np.zeros((10, 10), np.uint8)
    ir[:2] = 200  # 20 warm pixels of 100
    score = np.zeros((10, 10), np.float64)
    score[:2, :5] = 1.0  # half the warm pixels ranked first, the rest tied with every cool pixel
    # U = 10·80 (ranked above every cool pixel) + 10·80·½ (tied) → AUC 0.75
    assert hotspot_auc(score, ir) == pytest.approx(0.75)
    assert hotspot_auc(score * 7 + 3, ir) == pytest.approx(0.75)


def test_constant_ir_is_nan_and_size_mismatch_is_an_error() -> None:
    assert np.isnan(hotspot_auc(np.arange(16).reshape(4, 4), np.full((4, 4), 9, np.uint8)))
    with pytest.raises(InputError):
        hotspot_auc(np.zeros((4, 4)), np.zeros((4, 5)))
