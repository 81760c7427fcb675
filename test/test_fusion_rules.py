"""training/fusion_rules.py: fixed fusion rules scored like the fused image, on made-up pairs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mnm_core.pairs import find_pairs
from training.fusion_rules import RULES, fuse_luminance, main


def test_fuse_luminance_keeps_the_visible_image_for_its_own_luminance():
    rng = np.random.default_rng(1)
    vis = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    y = vis.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_array_equal(fuse_luminance(vis, y), vis)
    gray = vis[..., 0]
    np.testing.assert_array_equal(fuse_luminance(gray, gray.astype(np.float64) + 300), np.full_like(gray, 255))


def test_table_scores_every_rule_against_the_visible_image(pair_root, tmp_path, capsys):
    """With the real IR standing in for the pseudo-IR, max(y, pseudo-IR) is the real-IR baseline itself."""
    pairs, _ = find_pairs(pair_root / "synth_a")
    pseudo_ir = tmp_path / "synth_a" / "fast" / "pseudo_ir"
    pseudo_ir.mkdir(parents=True)
    for pair in pairs:
        shutil.copy(pair.ir_path, pseudo_ir / f"{pair.name}.png")
    assert main(["--pseudo-ir", str(tmp_path), "--data-root", str(pair_root), "--sets", "synth_a", "missing"]) == 0
    printed = capsys.readouterr().out
    assert "missing: skipped" in printed
    rows = {row.split(" | ")[1]: row.split(" | ") for row in printed.splitlines() if row.startswith("| synth_a")}
    assert list(rows) == list(RULES)
    assert rows["visible"][2:5] == ["+0.0 %"] * 3
    assert all(cell.startswith("+") and cell != "+0.0 %" for cell in rows["unsharp ×1.3 (no IR)"][2:5])
    qcb, real_ir_qcb = rows["max(y, pseudo-IR)"][5].replace("(", "").replace(")", "").split()
    assert float(qcb) == pytest.approx(float(real_ir_qcb), abs=0.01)


def test_no_matching_pseudo_ir_is_an_error_code(pair_root, tmp_path, capsys):
    assert main(["--pseudo-ir", str(tmp_path), "--data-root", str(pair_root), "--sets", "synth_a"]) == 2
    assert "no pseudo-IR image" in capsys.readouterr().out
