"""`mnm demo` and `mnm node-bench`: the real CLI in subprocesses (the demo on a tiny checkpoint, torch, no text)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from mnm_core.cli import main as cli_main

pytest.importorskip("rclpy", reason="needs rclpy (the ros-rclpy PyPI wheels or a sourced ROS 2)")
pytestmark = pytest.mark.ros


@pytest.mark.slow
def test_demo_writes_images_and_summary(tmp_path):
    import torch

    from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
    from mnm_core.config import preset
    from mnm_core.model import VgiiModel

    config = preset("tiny")
    model = VgiiModel(config)
    model.set_dictionary(torch.randn(config.n_atoms, config.atom_size, config.atom_size))
    checkpoint = save_checkpoint(tmp_path / "tiny.safetensors", model,
                                 CheckpointInfo(kind="vgii", preset="tiny", model_config=config, text_encoder="none"))
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "ROS_DOMAIN_ID"}
    done = subprocess.run(
        [sys.executable, "-m", "mnm_core.cli", "demo", "--out", str(out), "--checkpoint", str(checkpoint),
         "--backend", "torch", "--text-encoder", "none", "--frames", "3", "--rate", "4", "--size", "64x48"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_sent"] == 3
    assert summary["frames_received"] + summary["frames_dropped"] + summary["frames_lost_in_transport"] == 3
    assert summary["frames_received"] >= 1 and summary["latency_ms_median"] > 0
    assert summary["backend"].startswith("torch") and summary["text_encoder"] == "none"
    assert len(list(out.glob("fused_*.png"))) == summary["frames_received"]
    assert len(list(out.glob("pseudo_ir_*.png"))) == summary["frames_received"]
    assert (out / "contact_sheet.png").is_file()


def test_demo_with_a_missing_checkpoint_says_so_before_starting_ros(tmp_path, caplog):
    missing = tmp_path / "no_such_model.safetensors"
    out = tmp_path / "demo"
    with caplog.at_level(logging.ERROR):
        assert cli_main(["demo", "--out", str(out), "--checkpoint", str(missing)]) == 1
    assert str(missing) in caplog.text and "does not exist" in caplog.text
    assert not (out / "node.log").exists(), "the node must not be started for a checkpoint that is not there"


def test_demo_without_the_default_model_says_what_to_do(tmp_path, caplog, monkeypatch):
    """A source checkout without the shipped weights (mnm_core/weights is not packaged everywhere)."""
    import mnm_core.checkpoint

    missing = tmp_path / "weights" / "none.st"
    monkeypatch.setattr(mnm_core.checkpoint, "default_checkpoint_path", lambda preset="": missing)
    with caplog.at_level(logging.ERROR):
        assert cli_main(["demo", "--out", str(tmp_path / "demo")]) == 1
    assert "--checkpoint" in caplog.text and "not there yet" in caplog.text


def test_node_bench_prints_the_overhead_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ROS_DOMAIN_ID"}
    done = subprocess.run([sys.executable, "-m", "mnm_core.cli", "node-bench", "--size", "64x48", "--repeats", "3"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("in: rgb8 → array", "in: jpeg", "out: pseudo_ir + fused messages", "publish pseudo_ir + fused",
                  "node overhead per rgb8 frame"):
        assert stage in done.stdout
