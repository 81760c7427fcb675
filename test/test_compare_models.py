"""training/compare_models.py: the test-set comparison tables and compare.json, on made-up pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mnm_core.evaluation import FUSED_KEYS
from mnm_core.guesses import PSEUDO_IR_SCORES
from training.compare_models import main

SETS = ("synth_a", "synth_b")
NAMES = ("one", "two")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny model whose outputs vary (an untrained one's pseudo-IR is flat)."""
    from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
    from mnm_core.config import preset
    from test.test_export import random_vgii

    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", random_vgii("tiny"),
                           CheckpointInfo(kind="vgii", preset="tiny", model_config=preset("tiny")))


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tables_and_json_match_the_evaluator(pair_root, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "compare"
    argv = ["--data-root", str(pair_root), "--sets", *SETS, "--out", str(out), "--limit", "2"]
    argv += [arg for name in NAMES for arg in ("--checkpoint", f"{name}={tiny_checkpoint}")]
    code, printed, _ = run(argv, capsys)
    assert code == 0
    tables = [block for block in printed.split("\n\n") if block.startswith("| set |")]
    assert len(tables) == 4
    pseudo_ir, fused, gains, paired = (block.splitlines() for block in tables)
    assert pseudo_ir[0] == "| set | one | two | guess: visible Y | guess: 1 − Y |"
    assert [row.split(" | ")[0] for row in pseudo_ir[2:]] == ["| synth_a (2)", "| synth_b (2)"]
    assert fused[0] == "| set | one | two | visible | real-IR max(Y, IR) (upper bound) |"
    assert all(len(row.split(" | ")[1].split(", ")) == len(FUSED_KEYS) for row in fused[2:])
    assert len(gains) == 2 + len(SETS) * len(NAMES) and "AG vs visible" in gains[0]
    assert gains[0].endswith("| fused hotspot_auc (visible's) |")
    # the same file twice: no per-image difference at all
    assert paired[2:] == [f"| {s} | two | +0.000 ± 0.000 | 0 / 0 | no |" for s in SETS]

    document = json.loads((out / "compare.json").read_text())
    assert list(document["sets"]) == list(SETS) and not document["skipped_sets"]
    for set_name in SETS:
        entry = document["sets"][set_name]
        baselines = json.loads((out / set_name / "baselines" / "summary.json").read_text())
        assert entry["images"] == baselines["images"] == 2
        assert entry["visible"] == {key: baselines["mean"][key] for key in FUSED_KEYS}
        assert entry["real-ir"] == baselines["baselines"]["real-ir"]
        assert entry["guesses"]["1 − Y"]["hotspot_auc"] == baselines["mean"]["hotspot_auc_inv_vis_y"]
        for name in NAMES:
            model = entry["models"][name]
            summary = json.loads((out / set_name / name / "summary.json").read_text())
            assert summary["images"] == 2 and not summary["baselines"]  # baselines once per set, not per checkpoint
            assert model["fused"] == {key: summary["mean"][key] for key in FUSED_KEYS}
            assert model["pseudo_ir"] == {key: summary["mean"][key] for key in PSEUDO_IR_SCORES}
            values = [*model["fused"].values(), *model["pseudo_ir"].values(), *model["gain_over_visible_pct"].values()]
            assert all(isinstance(v, float) and math.isfinite(v) for v in values)
            assert (out / set_name / name / "per_image.csv").is_file()
        assert entry["models"]["one"]["fused"] == entry["models"]["two"]["fused"]  # the same file, deterministic


def test_missing_set_or_checkpoint_exits_2(pair_root, tiny_checkpoint, tmp_path, capsys):
    base = ["--data-root", str(pair_root), "--out", str(tmp_path / "o"), "--limit", "1"]
    code, _, err = run([*base, "--sets", "synth_a", "nowhere", "--checkpoint", f"a={tiny_checkpoint}"], capsys)
    assert code == 2 and "nowhere" in err
    code, _, err = run([*base, "--sets", "synth_a", "--checkpoint", f"a={tmp_path / 'none.safetensors'}"], capsys)
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_set_without_readable_pairs_is_skipped(pair_root, tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "data" / "empty" / "vis").mkdir(parents=True)
    (tmp_path / "data" / "empty" / "ir").mkdir()
    (tmp_path / "data" / "empty" / "vis" / "x.png").write_bytes(b"not an image")
    (tmp_path / "data" / "synth_a").symlink_to(pair_root / "synth_a")
    code, printed, _ = run(["--data-root", str(tmp_path / "data"), "--sets", "empty", "synth_a", "--limit", "1",
                            "--out", str(tmp_path / "o"), "--checkpoint", f"a={tiny_checkpoint}"], capsys)
    assert code == 0
    assert "- set empty skipped:" in printed and "no pair could be evaluated" in printed
    document = json.loads((tmp_path / "o" / "compare.json").read_text())
    assert list(document["sets"]) == ["synth_a"] and "empty" in document["skipped_sets"]


def test_paired_difference_matches_images_by_name():
    from training.compare_models import paired_difference

    reference = [{"name": n, "hotspot_auc": v} for n, v in (("a", 0.5), ("b", 0.6), ("c", 0.7), ("d", None))]
    rows = [{"name": n, "hotspot_auc": v} for n, v in (("c", 0.9), ("a", 0.4), ("b", 0.6), ("d", 0.8), ("e", 0.1))]
    paired = paired_difference(rows, reference)  # d has no reference value, e no reference row
    assert paired["images"] == 3 and (paired["better"], paired["worse"]) == (1, 1)
    assert paired["mean"] == pytest.approx(0.1 / 3)
    diffs = [0.2, -0.1, 0.0]
    variance = sum((d - 0.1 / 3) ** 2 for d in diffs) / 2
    assert paired["standard_error"] == pytest.approx(math.sqrt(variance / 3))
    assert paired_difference(rows[:1], reference) is None


def test_cells_as_the_docs_write_them():
    from training.compare_models import beats_guesses, fmt, pct, pseudo_ir_cell

    assert [fmt(v) for v in (2.9667, 0.62, 31.382, 22.851, 6.6649, None)] == \
        ["2.967", "0.620", "31.38", "22.85", "6.665", "—"]
    assert pct(-11.64) == "−11.6 %" and pct(2.0) == "+2.0 %"
    guesses = {"visible Y": {"pseudo_ir_ssim": 0.416, "hotspot_auc": 0.516},
               "1 − Y": {"pseudo_ir_ssim": 0.454, "hotspot_auc": 0.484}}
    model = {"pseudo_ir_psnr": 11.6, "pseudo_ir_ssim": 0.46, "hotspot_auc": 0.697}
    assert beats_guesses(model, guesses) and not beats_guesses({**model, "pseudo_ir_ssim": 0.431}, guesses)
    assert not beats_guesses({**model, "hotspot_auc": None}, guesses)
    assert pseudo_ir_cell(model, bold=True) == "**11.60 / 0.460 / 0.697**"
