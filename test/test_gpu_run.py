"""The prepared GPU run, end to end on the CPU: pack → gpu_run (tiny preset, 10-second budget) → mnm eval.

gpu_run runs with scipy, Pillow, ROS and the text packages made unimportable, as on the GPU machine
(torch, numpy, OpenCV, safetensors, PyYAML, tqdm, TensorBoard, ONNX only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mnm_core.checkpoint import load_model
from training.pack import read_pack

REPO_ROOT = Path(__file__).resolve().parents[1]
ABSENT_ON_GPU_MACHINE = ("scipy", "PIL", "rclpy", "rosbags", "transformers", "sentence_transformers",
                         "tokenizers", "matplotlib")
RUN_WITHOUT = f"""
import runpy, sys
sys.modules.update(dict.fromkeys({ABSENT_ON_GPU_MACHINE!r}))  # None: import fails, find_spec says absent
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=env,
                          cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory, pair_root: Path) -> Path:
    folder = tmp_path_factory.mktemp("pack")
    config = folder / "data.yaml"
    config.write_text(yaml.safe_dump({
        "train": {"preset": "tiny"},
        "data": {"root": str(pair_root), "train_sets": ["synth_a", "synth_b"], "val_every": 2, "val_images": 2},
        "text": {"encoder": "none"}}))
    result = _run("training/pack.py", "--config", str(config), "--out", str(folder / "pack.npz"))
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "pack.npz"


def test_pack_holds_gray_training_pairs_and_colour_validation_pairs(pack: Path) -> None:
    train, val, features = read_pack(pack)
    assert len(train) == 4 and len(val) == 3  # every 2nd of 4 + 3 pairs held out
    assert all(im.vis.ndim == 2 and im.vis.shape == im.ir.shape for im in train)
    assert all(im.vis.ndim == 3 for im in val)
    assert features is None  # text encoder none


def test_gpu_run_returns_a_model_within_its_budget(tmp_path: Path, pack: Path, pair_root: Path) -> None:
    out = tmp_path / "out"
    result = _run("-c", RUN_WITHOUT, "training/gpu_run.py", "--pack", str(pack), "--preset", "tiny",
                  "--budget-s", "10", "--batch-size", "2", "--out", str(out), "--work-dir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for stage in ("jsrl", "vgii", "fusion"):
        assert summary[stage]["crops_per_s"] > 0, stage
    assert {"hotspot_auc", "pseudo_ir_ssim", "val_score"} <= set(summary["vgii"]["last_val"])
    assert any((out / "tb").iterdir()), "no TensorBoard scalars"
    model, _ = load_model(out / "mnm_tiny.safetensors", kind="vgii", preset="tiny")
    assert float(model.dictionary.abs().sum()) > 0
    evaluation = tmp_path / "eval"
    result = _run("-m", "mnm_core.cli", "eval", "--data", str(pair_root / "synth_b"), "--method", "model",
                  "--checkpoint", str(out / "mnm_tiny.safetensors"), "--text-encoder", "none",
                  "--out", str(evaluation))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 0.0 <= json.loads((evaluation / "summary.json").read_text())["mean"]["hotspot_auc"] <= 1.0
