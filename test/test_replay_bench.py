"""`mnm replay-bench`: real fuse_node processes (tiny random model, torch, no text) fed a tiny bag by
`mnm bag-play`, and its errors. Each benchmark picks its own random ROS domain, localhost discovery."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (pip ros-rclpy[fastrtps] or a sourced ROS 2)")

from mnm_core.bags import BagWriter
from mnm_core.cli import main as cli_main
from mnm_core.errors import ConfigError, DataError
from mnm_ros.replay_bench import (
    format_table,
    parse_variant,
    run_replay_bench,
    summarize,
)

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

TOPIC = "/camera/image_raw"
FRAMES = 8


def _make_bag(path: Path) -> Path:
    rng = np.random.default_rng(5)
    with BagWriter(path, "mcap") as writer:
        for k in range(FRAMES):
            writer.write_image(TOPIC, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "rgb",
                               1_700_000_000_000_000_000 + k * 100_000_000, frame_id="camera")  # 10 Hz
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bag, params file): the node on a tiny random checkpoint, torch backend, no text encoder."""
    import torch

    from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
    from mnm_core.config import preset
    from mnm_core.model import VgiiModel

    root = tmp_path_factory.mktemp("replay_bench")
    config = preset("tiny")
    model = VgiiModel(config)
    model.set_dictionary(torch.randn(config.n_atoms, config.atom_size, config.atom_size) * 0.1)
    checkpoint = save_checkpoint(root / "tiny.safetensors", model,
                                 CheckpointInfo(kind="vgii", preset="tiny", model_config=config, text_encoder="none"))
    params = root / "params.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    pipeline:\n      checkpoint: \"{checkpoint}\"\n"
                      "      backend: torch\n    text:\n      encoder: none\n")
    return _make_bag(root / "bag"), params


@pytest.mark.slow
def test_one_round_of_two_variants_gives_real_numbers(setup, tmp_path):
    bag, params = setup
    variants = {"base": ["diagnostics_period_s:=0.5"], "other": ["text.refresh_period_s:=1.0"]}
    runs = run_replay_bench(bag, variants, repeats=1, params_file=params, out=tmp_path, wait_s=90, settle_s=5.0)
    assert [(r.variant, r.round) for r in runs] == [("base", 1), ("other", 1)]
    for run in runs:
        assert run.total == FRAMES and 0 < run.published <= FRAMES
        assert math.isfinite(run.p99_ms) and run.p99_ms >= run.median_ms > 0
        folder = tmp_path / f"r1_{run.variant}"
        assert (folder / "node.log").is_file() and (folder / "play.log").is_file()
        assert (folder / "record" / "latency.csv").read_text().count("\n") == FRAMES + 1
    summaries = summarize(runs)
    assert [s.variant for s in summaries] == ["base", "other"]
    assert summaries[0].p99_ratio == 1.0 and summaries[0].p99_ms == runs[0].p99_ms
    assert summaries[1].p99_ratio == pytest.approx(runs[1].p99_ms / runs[0].p99_ms)
    assert all(0 < s.min_published_fraction <= 1 and s.p99_ms >= s.median_ms > 0 for s in summaries)
    table = format_table(runs, summaries)
    assert "| base " in table and "| other " in table and "p99 vs base" in table
    assert f"{runs[0].published} of {FRAMES}" in table


def test_a_node_that_dies_at_start_is_reported_with_its_log(setup, tmp_path):
    bag, params = setup
    with pytest.raises(ConfigError, match=r"(?s)fuse_node \(broken, round 1\) exited with code [1-9].*last lines"):
        run_replay_bench(bag, {"broken": ["pipeline.backend:=no-such-backend"]}, repeats=1, params_file=params,
                         out=tmp_path, wait_s=60, settle_s=0.0)


def test_bag_topic_params_and_variants_are_checked_before_anything_starts(setup, tmp_path, caplog):
    bag, params = setup
    with pytest.raises(DataError, match="does not exist"):
        run_replay_bench(tmp_path / "no_bag", repeats=1, params_file=params)
    with pytest.raises(DataError, match=r"topic /nope is not in bag .*it has: /camera/image_raw"):
        run_replay_bench(bag, topic="/nope", params_file=params)
    with pytest.raises(ConfigError, match=r"params file .* does not exist"):
        run_replay_bench(bag, params_file=tmp_path / "none.yaml")
    assert parse_variant("a=text.encoder:=none, text.refresh_period_s:=1.0") == \
        ("a", ("text.encoder:=none", "text.refresh_period_s:=1.0"))
    assert parse_variant("defaults=") == ("defaults", ())
    for bad in ("no-equals", "a=text.encoder", "a b=x:=1", "a=:=1"):
        with pytest.raises(ConfigError):
            parse_variant(bad)
    with caplog.at_level(logging.ERROR):
        assert cli_main(["replay-bench", str(tmp_path / "no_bag")]) == 1
    assert "does not exist" in caplog.text
    with pytest.raises(SystemExit):
        cli_main(["replay-bench", str(bag), "--variant", "a=text.encoder"])
    assert not list(tmp_path.glob("r1_*")), "nothing may start for a bad bag, topic or params file"
