"""`mnm eval` on small generated pair folders: outputs, baselines, bad-input handling, the model method."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnm_core.cli import main
from mnm_core.errors import DataError
from mnm_core.evaluation import FUSED_KEYS, evaluate, fuse_real_ir, fuse_visible
from mnm_core.guesses import GUESS_KEYS, PSEUDO_IR_SCORES, guess_means, pseudo_ir_comparison
from mnm_core.metrics import rgb2gray
from mnm_core.pairs import find_pairs, load_pair

H, W = 40, 56


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vis = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (5, 5), 0)
    ir = cv2.GaussianBlur(rng.integers(0, 256, (H, W), dtype=np.uint8), (5, 5), 0)
    return vis, ir


def _save(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image[..., ::-1] if image.ndim == 3 else image)


@pytest.fixture
def good_dir(tmp_path) -> Path:
    """Two clean colour pairs (PNG and JPEG)."""
    root = tmp_path / "good"
    for name, ext, seed in (("a", ".png", 0), ("b", ".jpg", 1)):
        vis, ir = _scene(seed)
        _save(root / "vis" / f"{name}{ext}", vis)
        _save(root / "ir" / f"{name}{ext}", ir)
    return root


@pytest.fixture
def messy_dir(good_dir) -> Path:
    """The good pairs plus every kind of problem the issue lists."""
    vis, ir = _scene(2)
    _save(good_dir / "vis" / "gray_vis.png", vis[..., 1])  # gray visible image: scored as gray
    _save(good_dir / "ir" / "gray_vis.png", ir)
    _save(good_dir / "vis" / "ir16.png", vis)  # 16-bit IR: rescaled, with a note
    _save(good_dir / "ir" / "ir16.png", (ir.astype(np.uint16) * 20 + 3000))
    _save(good_dir / "vis" / "ir3.png", vis)  # IR stored as three equal channels
    _save(good_dir / "ir" / "ir3.png", np.repeat(ir[..., None], 3, axis=2))
    _save(good_dir / "vis" / "size.png", vis)  # mismatched sizes: skipped
    _save(good_dir / "ir" / "size.png", ir[:-4])
    _save(good_dir / "vis" / "lonely_vis.png", vis)  # no IR partner: skipped
    _save(good_dir / "ir" / "lonely_ir.png", ir)  # no visible partner: skipped
    (good_dir / "vis" / "broken.png").write_bytes(b"\x89PNG truncated")  # unreadable: skipped
    _save(good_dir / "ir" / "broken.png", ir)
    (good_dir / "vis" / "notes.txt").write_text("not an image, ignored")
    return good_dir


def test_find_pairs_reports_lonely_files(messy_dir):
    pairs, skipped = find_pairs(messy_dir)
    assert [p.name for p in pairs] == ["a", "b", "broken", "gray_vis", "ir16", "ir3", "size"]
    reasons = {s.name: s.reason for s in skipped}
    assert "no infrared partner" in reasons["lonely_vis"] and "no visible partner" in reasons["lonely_ir"]


def test_load_pair_conversions(messy_dir):
    pairs = {p.name: p for p in find_pairs(messy_dir)[0]}
    gray = load_pair(pairs["gray_vis"])
    assert gray.vis.shape == (H, W) and any("gray" in n for n in gray.notes)
    ir16 = load_pair(pairs["ir16"])
    assert ir16.ir.dtype == np.uint8 and ir16.ir.min() == 0 and ir16.ir.max() == 255
    assert any("16-bit" in n for n in ir16.notes)
    assert load_pair(pairs["ir3"]).ir.shape == (H, W)
    with pytest.raises(DataError, match="sizes differ"):
        load_pair(pairs["size"])
    with pytest.raises(DataError, match="not a readable image"):
        load_pair(pairs["broken"])


def test_missing_folder_is_a_data_error(tmp_path):
    (tmp_path / "vis").mkdir()
    with pytest.raises(DataError, match="no ir/ folder"):
        find_pairs(tmp_path)


def test_baseline_methods():
    vis, ir = _scene(3)
    assert np.array_equal(fuse_visible(vis, ir).fused, vis)
    dark = fuse_real_ir(vis, np.zeros_like(ir)).fused  # max(Y, 0) = Y: the visible image back
    assert np.abs(dark.astype(int) - vis).max() <= 1
    fused = fuse_real_ir(vis, ir).fused
    y = lambda rgb: rgb.astype(float) @ [0.299, 0.587, 0.114]  # noqa: E731
    assert np.all(y(fused) >= np.maximum(y(vis), ir) - 1.5)
    assert np.array_equal(fuse_real_ir(vis[..., 0], ir).fused, np.maximum(vis[..., 0], ir))


def test_eval_visible_writes_everything(messy_dir, tmp_path):
    out = tmp_path / "out"
    result = evaluate(messy_dir, "visible", out, progress=False)
    scored = ["a", "b", "gray_vis", "ir16", "ir3"]
    assert [r["name"] for r in result.rows] == scored
    assert sorted(s.name for s in result.skipped) == ["broken", "lonely_ir", "lonely_vis", "size"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "visible" and summary["mode"] == "vifb" and summary["images"] == 5
    assert list(summary["mean"]) == list(FUSED_KEYS + GUESS_KEYS)  # no pseudo-IR: only the guesses
    assert set(summary["baselines"]) == {"real-ir"} and set(summary["baselines"]["real-ir"]) == set(FUSED_KEYS)
    # the visible image as the fused image ranks the warm pixels exactly as the guess "visible Y" does
    assert summary["mean"]["fused_hotspot_auc"] == pytest.approx(summary["mean"]["hotspot_auc_vis_y"])
    assert {s["name"] for s in summary["skipped"]} == {"broken", "lonely_ir", "lonely_vis", "size"}
    with (out / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == scored and "16-bit" in rows[3]["notes"]
    assert float(rows[0]["AG"]) == pytest.approx(result.rows[0]["AG"])
    assert sorted(p.name for p in (out / "fused").iterdir()) == [f"{n}.png" for n in scored]
    assert not (out / "pseudo_ir").exists()
    fused_a = cv2.imread(str(out / "fused" / "a.png"))[..., ::-1]
    assert np.array_equal(fused_a, cv2.imread(str(messy_dir / "vis" / "a.png"))[..., ::-1])
    html = (out / "report.html").read_text()
    assert "chart.png" in html and "lonely_vis" in html and "pseudo_ir_chart.png" in html
    assert "<th>1 − Y</th>" in html and "<th>model</th>" not in html  # the guesses, no model row
    for src in re.findall(r'src="([^"]+)"', html):
        assert (out / src).is_file(), src


def test_pseudo_ir_comparison_scores_the_guesses():
    """An IR that is the inverted visible Y: 1 − Y is a perfect guess, Y the worst, and a copy of the IR too."""
    vis = _scene(5)[0]
    ir = 255 - rgb2gray(vis)
    scores = pseudo_ir_comparison(vis, ir, pseudo_ir=ir)
    assert set(scores) == set(PSEUDO_IR_SCORES + GUESS_KEYS)
    assert scores["hotspot_auc"] == 1.0 and scores["pseudo_ir_ssim"] == pytest.approx(1.0)
    assert scores["hotspot_auc_inv_vis_y"] == 1.0 and scores["pseudo_ir_ssim_inv_vis_y"] == pytest.approx(1.0)
    assert scores["pseudo_ir_psnr_inv_vis_y"] == np.inf
    assert scores["hotspot_auc_vis_y"] == 0.0 and scores["pseudo_ir_ssim_vis_y"] < 0
    assert set(pseudo_ir_comparison(vis, ir)) == set(GUESS_KEYS)
    table = guess_means(scores)
    assert list(table) == ["model", "visible Y", "1 − Y"] and table["1 − Y"]["hotspot_auc"] == 1.0


def test_eval_gray_mode_without_baselines(good_dir, tmp_path):
    result = evaluate(good_dir, "real-ir", tmp_path / "out", mode="gray", baselines=False, report=False,
                      progress=False)
    summary = json.loads(result.summary_path.read_text())
    assert summary["mode"] == "gray" and summary["method"] == "real-ir" and summary["baselines"] == {}
    assert not (tmp_path / "out" / "report.html").exists()


def test_eval_cli(good_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["eval", "--data", str(good_dir), "--method", "real-ir", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| real-ir |" in printed and "| visible |" in printed
    assert (out / "summary.json").is_file() and (out / "chart.png").stat().st_size > 1000


def test_eval_cli_fails_cleanly_without_usable_pairs(tmp_path, caplog):
    _save(tmp_path / "vis" / "x.png", _scene(0)[0])
    (tmp_path / "ir").mkdir()
    assert main(["eval", "--data", str(tmp_path), "--method", "visible", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 1
    assert "no pair could be evaluated" in caplog.text and "no infrared partner" in caplog.text


def test_eval_model_with_missing_checkpoint(good_dir, tmp_path, caplog):
    assert main(["eval", "--data", str(good_dir), "--method", "model", "--checkpoint", str(tmp_path / "none.st"),
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "does not exist" in caplog.text


def test_eval_model_with_tiny_checkpoint(good_dir, tmp_path):
    pytest.importorskip("mnm_core.pipeline")
    from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
    from mnm_core.config import preset
    from mnm_core.model import VgiiModel

    checkpoint = save_checkpoint(tmp_path / "tiny.safetensors", VgiiModel(preset("tiny")),
                                 CheckpointInfo(kind="vgii", preset="tiny", model_config=preset("tiny")))
    _save(good_dir / "vis" / "g.png", _scene(4)[0][..., 0])  # a gray visible image goes through layout="gray"
    _save(good_dir / "ir" / "g.png", _scene(4)[1])
    out = tmp_path / "model"
    result = evaluate(good_dir, "model", out, checkpoint=checkpoint, progress=False)
    assert [r["name"] for r in result.rows] == ["a", "b", "g"] and not result.skipped
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["mean"]) == list(FUSED_KEYS + PSEUDO_IR_SCORES + GUESS_KEYS)
    assert 0 <= summary["mean"]["hotspot_auc"] <= 1
    assert set(summary["baselines"]) == {"visible", "real-ir"}
    assert summary["checkpoint"] == str(checkpoint)
    pseudo_ir = cv2.imread(str(out / "pseudo_ir" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert pseudo_ir.shape == (H, W) and pseudo_ir.dtype == np.uint8
    assert cv2.imread(str(out / "fused" / "g.png"), cv2.IMREAD_UNCHANGED).shape == (H, W)
    assert "hotspot_auc,pseudo_ir_psnr_vis_y" in (out / "per_image.csv").read_text().splitlines()[0]
    html = (out / "report.html").read_text()
    assert "_pseudo_ir.jpg" in html and "<th>model</th>" in html and "<th>visible Y</th>" in html
