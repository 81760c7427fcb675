"""VIFB metrics: every value of ../shared/reference, plus properties on small synthetic images."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnm_core.cli import main
from mnm_core.errors import InputError
from mnm_core.metrics import METRIC_KEYS, fusion_metrics, pseudo_ir_scores, rgb2gray
from mnm_core.metrics.vifb import avg_gradient, cross_entropy, edge_intensity, entropy, spatial_frequency
from mnm_core.pairs import read_image

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"
TOLERANCE = {"Qcb": 1e-2}
"""Relative tolerance per metric for the Octave reference (README: 1e-3, Qcb 1e-2)."""


def reference_rows(folder: str, filename: str) -> list[tuple[Path, dict[str, str]]]:
    path = REFERENCE / folder / filename
    if not path.is_file():
        return []
    with path.open() as handle:
        return [(path.parent, row) for row in csv.DictReader(handle)]


def _id(case: tuple[Path, dict[str, str]]) -> str:
    return Path(case[1]["fused"]).stem


needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")


def _triple(base: Path, row: dict[str, str]) -> tuple[np.ndarray, ...]:
    return tuple(read_image(base / row[k]) for k in ("vis", "ir", "fused"))


@needs_reference
@pytest.mark.parametrize(("mode", "filename"), [("vifb", "values_vifb.csv"), ("gray", "values_gray.csv")])
def test_octave_reference(mode, filename):
    """Every value VIFB's MATLAB code produced under Octave, within 1e-3 (Qcb 1e-2) relative."""
    rows = reference_rows("metrics", filename)
    assert len(rows) == 7, f"expected 7 rows in {filename}"
    failures = []
    for base, row in rows:
        values = fusion_metrics(*_triple(base, row), mode=mode)
        for key in METRIC_KEYS:
            expected = float(row[key])
            if math.isnan(expected):  # VIFB's own Qcb fails on the *_grayfused row in vifb mode
                assert math.isfinite(values[key]), f"{row['fused']} {key}: must compute or refuse, got {values[key]}"
                continue
            if not math.isclose(values[key], expected, rel_tol=TOLERANCE.get(key, 1e-3)):
                failures.append(f"{row['fused']} {key}: {values[key]!r} vs {expected!r}")
    assert not failures, "\n".join(failures)


@needs_reference
def test_gray_fused_with_colour_vis_qcb_matches_gray_mode():
    """VIFB fails on Qcb(colour vis, gray fused); ours converts the colour source with rgb2gray instead."""
    (base, vifb_row), = [c for c in reference_rows("metrics", "values_vifb.csv") if "grayfused" in c[1]["fused"]]
    (_, gray_row), = [c for c in reference_rows("metrics", "values_gray.csv") if "grayfused" in c[1]["fused"]]
    vis, ir, fused = _triple(base, vifb_row)
    assert vis.ndim == 3 and fused.ndim == 2
    values = fusion_metrics(vis, ir, fused, mode="vifb")
    assert values["Qcb"] == pytest.approx(float(gray_row["Qcb"]), rel=1e-2)


@needs_reference
def test_matlab_reference():
    """VIFB's stored MATLAB values (5 significant digits) for its own fused JPEGs; IR read as H×W×3."""
    rows = reference_rows("vifb_matlab", "values_matlab.csv")
    assert len(rows) == 8
    failures = []
    for base, row in rows:
        vis, ir, fused = _triple(base, row)
        assert ir.ndim == 3, "MATLAB reads these IR JPEGs as three equal channels; so must the test"
        values = fusion_metrics(vis, ir, fused, mode="vifb")
        for key in METRIC_KEYS:
            expected = float(row[key])
            digits = 5 - 1 - math.floor(math.log10(abs(expected)))
            rounding = 0.5 * 10.0 ** -digits
            if abs(values[key] - expected) > rounding + 1e-4 * abs(expected):
                failures.append(f"{row['fused']} {key}: {values[key]!r} vs {expected} (±{rounding})")
    assert not failures, "\n".join(failures)


def random_triple(height: int = 48, width: int = 64, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    vis = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (5, 5), 0)
    ir = cv2.GaussianBlur(rng.integers(0, 256, (height, width), dtype=np.uint8), (5, 5), 0)
    fused = np.maximum(vis, ir[..., None])
    return vis, ir, fused


def test_rgb2gray_matches_matlab():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], dtype=np.uint8)
    assert rgb2gray(rgb).tolist() == [[76, 150, 29, 255, 18]]


def test_spatial_frequency_reads_colour_as_h_by_3w():
    _, _, fused = random_triple()
    wide = np.concatenate([fused[..., 0], fused[..., 1], fused[..., 2]], axis=1).astype(np.float64)
    rows, cols = wide.shape
    rf = sum((wide[i, j] - wide[i, j - 1]) ** 2 for i in range(rows) for j in range(1, cols)) / wide.size
    cf = sum((wide[i, j] - wide[i - 1, j]) ** 2 for j in range(cols) for i in range(1, rows)) / wide.size
    assert spatial_frequency(fused) == pytest.approx(math.sqrt(rf + cf), rel=1e-12)
    per_channel = np.mean([spatial_frequency(fused[..., k]) for k in range(3)])
    assert spatial_frequency(fused) != pytest.approx(per_channel, rel=1e-6)


def test_simple_closed_forms():
    ramp = np.tile(np.arange(10, dtype=np.uint8) * 3, (6, 1))  # ∂x = 3 everywhere, ∂y = 0
    assert avg_gradient(ramp) == pytest.approx(6 * 10 * 3 / math.sqrt(2) / (5 * 9))
    assert edge_intensity(np.full((5, 7), 99, np.uint8)) == 0.0
    halves = np.zeros((4, 4), np.uint8)
    halves[2:] = 200
    assert entropy(halves) == pytest.approx(1.0)
    assert cross_entropy(halves, halves, halves) == 0.0


def test_identical_images_give_perfect_qcb():
    vis, _, _ = random_triple()
    gray = vis[..., 1].copy()
    assert fusion_metrics(gray, gray, gray)["Qcb"] == pytest.approx(1.0)


def test_constant_images_do_not_crash():
    flat = np.full((32, 32), 128, np.uint8)
    values = fusion_metrics(flat, flat, flat)
    assert math.isnan(values["Qcb"])  # undefined, as in MATLAB
    assert values["AG"] == values["EI"] == values["EN"] == values["SF"] == 0.0


def test_gray_vis_with_colour_fused_pairs_every_channel():
    vis, ir, fused = random_triple()
    gray_vis = rgb2gray(vis)
    values = fusion_metrics(gray_vis, ir, fused)
    stacked = fusion_metrics(np.repeat(gray_vis[..., None], 3, axis=2), ir, fused)
    assert values == pytest.approx(stacked)


def test_gray_mode_equals_vifb_mode_on_gray_images():
    vis, ir, fused = random_triple()
    gray = tuple(rgb2gray(a) if a.ndim == 3 else a for a in (vis, ir, fused))
    assert fusion_metrics(vis, ir, fused, mode="gray") == pytest.approx(fusion_metrics(*gray, mode="vifb"))


@pytest.mark.parametrize(
    ("images", "match"),
    [
        ((np.zeros((8, 8), np.float32),) * 3, "uint8"),
        ((np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8), np.zeros((8, 8), np.uint8)), "differ in size"),
        ((np.zeros((8, 8, 4), np.uint8),) * 3, "H×W or H×W×3"),
        ((np.zeros((1, 8), np.uint8),) * 3, "at least 2×2"),
    ],
)
def test_bad_inputs_are_input_errors(images, match):
    with pytest.raises(InputError, match=match):
        fusion_metrics(*images)


def test_unknown_mode():
    with pytest.raises(InputError, match="mode"):
        fusion_metrics(*random_triple(), mode="luma")


def test_pseudo_ir_scores():
    _, ir, _ = random_triple()
    same = pseudo_ir_scores(ir, ir)
    assert same["pseudo_ir_psnr"] == math.inf and same["pseudo_ir_ssim"] == pytest.approx(1.0)
    shifted = np.clip(ir.astype(np.int16) + 5, 0, 255).astype(np.uint8)
    mse = np.mean((shifted.astype(float) - ir) ** 2)
    scores = pseudo_ir_scores(shifted, np.repeat(ir[..., None], 3, axis=2))
    assert scores["pseudo_ir_psnr"] == pytest.approx(10 * math.log10(255**2 / mse))
    assert 0.9 < scores["pseudo_ir_ssim"] < 1.0
    assert pseudo_ir_scores(255 - ir, ir)["pseudo_ir_ssim"] < 0


def test_640x480_colour_triple_is_fast():
    vis, ir, fused = random_triple(480, 640)
    fusion_metrics(vis, ir, fused)  # warm caches (CSF grid)
    start = time.process_time()
    fusion_metrics(vis, ir, fused)
    assert time.process_time() - start < 1.0  # typically ~0.3 s of CPU time


def test_metrics_command_prints_json(tmp_path, capsys):
    paths = {}
    for name, image in zip(("vis", "ir", "fused"), random_triple()):
        paths[name] = tmp_path / f"{name}.png"
        cv2.imwrite(str(paths[name]), image[..., ::-1] if image.ndim == 3 else image)
    argv = ["metrics", "--vis", str(paths["vis"]), "--ir", str(paths["ir"]), "--fused", str(paths["fused"])]
    assert main(argv) == 0
    values = json.loads(capsys.readouterr().out)
    assert list(values) == list(METRIC_KEYS)
    assert values == pytest.approx(fusion_metrics(*random_triple()))
    assert main([*argv, "--mode", "gray", "--pseudo-ir", str(paths["ir"])]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["pseudo_ir_psnr"] is None and values["pseudo_ir_ssim"] == pytest.approx(1.0)  # inf → null


def test_metrics_command_reports_unreadable_file(tmp_path, caplog):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["metrics", "--vis", str(bad), "--ir", str(bad), "--fused", str(bad)]) == 1
    assert "not a readable image" in caplog.text
