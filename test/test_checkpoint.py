"""Checkpoints: round trip, fp16 storage, and every mismatch failing with what differs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mnm_core.checkpoint import CheckpointInfo, load_model, read_checkpoint, save_checkpoint
from mnm_core.config import preset
from mnm_core.errors import CheckpointError
from mnm_core.model import VgiiModel
from test.conftest import random_dictionary


def tiny_checkpoint(path, half=False):
    config = preset("tiny")
    model = VgiiModel(config)
    model.set_dictionary(random_dictionary(config.n_atoms, config.atom_size))
    save_checkpoint(path, model, CheckpointInfo("vgii", "tiny", config, extra={"step": 7}), half=half)
    return model


@pytest.mark.parametrize("half", [False, True])
def test_round_trip(tmp_path, half):
    original = tiny_checkpoint(tmp_path / "m.safetensors", half=half)
    loaded, info = load_model(tmp_path / "m.safetensors", preset="tiny")
    assert info.preset == "tiny" and info.extra == {"step": 7}
    tolerance = 1e-3 if half else 0.0
    for name, tensor in original.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(loaded.dictionary, original.dictionary)  # buffers stay fp32


def test_missing_and_truncated(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "none.safetensors")
    path = tmp_path / "m.safetensors"
    tiny_checkpoint(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(path)


def test_preset_and_kind_mismatch(tmp_path):
    path = tmp_path / "m.safetensors"
    tiny_checkpoint(path)
    with pytest.raises(CheckpointError, match="holds preset 'tiny', but preset 'small'"):
        load_model(path, preset="small")
    with pytest.raises(CheckpointError, match="holds a 'vgii' model, not a 'jsrl'"):
        load_model(path, kind="jsrl")


def test_version_and_shape_mismatch(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    tiny_checkpoint(path)
    info, tensors = read_checkpoint(path)
    future = tmp_path / "future.safetensors"
    save_file(tensors, str(future), metadata={"mnm_format": "99", "kind": "vgii", "preset": "tiny",
                                              "model_config": "{}"})
    with pytest.raises(CheckpointError, match="format version '99'"):
        load_model(future)
    other = dataclasses.replace(info.model_config, n_atoms=4)
    reshaped = tmp_path / "reshaped.safetensors"
    save_checkpoint(reshaped, VgiiModel(other), CheckpointInfo("vgii", "tiny", other))
    _, tensors4 = read_checkpoint(reshaped)
    model = VgiiModel(preset("tiny"))
    from mnm_core.checkpoint import load_into

    with pytest.raises(CheckpointError, match="shape"):
        load_into(model, tensors4, reshaped)


@pytest.mark.parametrize(("metadata", "message"), [
    ({"mnm_format": "one"}, r"format version 'one'; this mnm reads version 1"),
    ({"model_config": "[8, 8]"}, r"metadata 'model_config' must be a JSON object, got a list"),
    ({"extra": "3"}, r"metadata 'extra' must be a JSON object, got a int"),
    ({"model_config": "{not json"}, r"unreadable metadata"),
    ({"model_config": '{"widths": ["wide"]}'}, r"unreadable metadata: ModelConfig\.widths\[0\]: expected int"),
    ({"model_config": '{"widths": [300000, 300000, 300000, 300000]}'},
     r"asks for a [\d,]+-parameter vgii model \(widths \(300000, 300000, 300000, 300000\)\); mnm loads at most"),
    ({"model_config": '{"n_atoms": 16}'}, r"does not fit the model \(.*shape"),
])
def test_hostile_metadata_is_one_clear_error(tmp_path, metadata, message):
    """Metadata a broken or malicious file may carry: refused with a message, nothing large allocated."""
    import json

    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    tiny_checkpoint(path)
    info, tensors = read_checkpoint(path)
    base = {"mnm_format": "1", "kind": "vgii", "preset": "tiny",
            "model_config": json.dumps(dataclasses.asdict(info.model_config)), "extra": "{}"}
    hostile = tmp_path / "hostile.safetensors"
    save_file(tensors, str(hostile), metadata={**base, **metadata})
    with pytest.raises(CheckpointError, match=message):
        load_model(hostile)
