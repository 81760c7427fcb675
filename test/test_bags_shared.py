"""A bag made from real RoadScene pairs, evaluated offline with the shipped model, gives the numbers of
`mnm eval --method model` on the same folder (same frames: raw rgb8/mono8 messages keep every pixel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnm_core.bags import evaluate_bag, make_bag_from_pairs
from mnm_core.checkpoint import default_checkpoint_path
from mnm_core.evaluation import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "roadscene_test"
PAIRS = 4
"""A subset keeps the test short; docs/bags.md records the whole set."""


@pytest.mark.slow
def test_roadscene_bag_matches_mnm_eval(tmp_path: Path) -> None:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent (the shared RoadScene test pairs)")
    if not default_checkpoint_path().is_file():
        pytest.skip(f"the shipped checkpoint {default_checkpoint_path()} is absent (not trained yet)")
    subset = tmp_path / "pairs"
    for sub in ("vis", "ir"):
        (subset / sub).mkdir(parents=True)
        for path in sorted((DATA / sub).iterdir())[:PAIRS]:
            (subset / sub / path.name).symlink_to(path)
    make_bag_from_pairs(subset, tmp_path / "bag", storage="mcap", progress=False)
    offline = evaluate_bag(tmp_path / "bag", tmp_path / "bag_eval", "/camera/image_raw", "/thermal/image_raw",
                           progress=False, report=False)
    folder = evaluate(subset, "model", tmp_path / "eval", baselines=False, progress=False, report=False)
    expected = json.loads(folder.summary_path.read_text())["mean"]
    assert offline.summary["frames"] == offline.summary["paired"] == PAIRS
    assert offline.summary["mean"] == expected
