"""Weight-space interpolation of two checkpoints (training/interpolate.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mnm_core.checkpoint import load_model
from mnm_core.config import preset
from mnm_core.errors import CheckpointError
from test.conftest import write_tiny_checkpoint
from training.interpolate import interpolate


@pytest.mark.parametrize("alpha", [0.0, 0.25, 1.0])
def test_interpolation_is_the_weighted_mean(tmp_path, alpha):
    start = write_tiny_checkpoint(tmp_path / "a.safetensors", seed=1)
    end = write_tiny_checkpoint(tmp_path / "b.safetensors", seed=2)
    out = interpolate(tmp_path / "a.safetensors", tmp_path / "b.safetensors", alpha, tmp_path / "m.safetensors")
    model, info = load_model(out, preset="tiny")
    assert info.extra["interpolated"]["alpha"] == alpha and info.extra["from_extra"] == {"seed": 1}
    changed = 0
    for name, tensor in model.state_dict().items():
        expected = (1 - alpha) * start[name] + alpha * end[name]
        torch.testing.assert_close(tensor, expected)
        changed += not torch.equal(start[name], end[name])
    assert changed > 0  # the two sources really differ


def test_different_models_are_refused(tmp_path):
    write_tiny_checkpoint(tmp_path / "a.safetensors", seed=1)
    wider = dataclasses.replace(preset("tiny"), n_atoms=preset("tiny").n_atoms * 2)
    write_tiny_checkpoint(tmp_path / "b.safetensors", seed=2, config=wider)
    with pytest.raises(CheckpointError, match="model_config"):
        interpolate(tmp_path / "a.safetensors", tmp_path / "b.safetensors", 0.5, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="alpha"):
        interpolate(tmp_path / "a.safetensors", tmp_path / "a.safetensors", 1.5, tmp_path / "m.safetensors")
