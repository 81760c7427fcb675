"""Colour conversion, padding, and the typed configuration."""

from __future__ import annotations

import numpy as np
import pytest

from mnm_core.colour import crop_to, pad_to_multiple, padded_size, rgb_to_ycbcr, ycbcr_to_rgb
from mnm_core.config import ModelConfig, PipelineConfig, TextConfig, from_mapping, load_yaml, preset
from mnm_core.errors import ConfigError, InputError


def test_ycbcr_round_trip_and_bt601_values():
    rgb = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    white = rgb_to_ycbcr(np.ones((1, 1, 3), np.float32))[0, 0]
    np.testing.assert_allclose(white, [1.0, 0.5, 0.5], atol=1e-6)
    red = rgb_to_ycbcr(np.array([[[1.0, 0, 0]]], np.float32))[0, 0]
    np.testing.assert_allclose(red, [0.299, 0.5 - 0.168736, 1.0], atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (7, 13), (641, 479), (8, 16)])
def test_pad_and_crop(size):
    image = np.random.default_rng(1).random(size).astype(np.float32)
    padded = pad_to_multiple(image)
    assert padded.shape == padded_size(*size)
    assert all(s % 8 == 0 for s in padded.shape)
    np.testing.assert_array_equal(crop_to(padded, *size), image)


def test_empty_size_is_refused():
    with pytest.raises(InputError, match="empty"):
        padded_size(0, 5)


def test_from_mapping_rejects_unknown_keys_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'backend'"):
        from_mapping(PipelineConfig, {"bakend": "torch"})


def test_from_mapping_checks_types_and_literals():
    assert from_mapping(TextConfig, {"refresh_period_s": 3}).refresh_period_s == 3.0
    with pytest.raises(ConfigError, match="not one of"):
        from_mapping(PipelineConfig, {"backend": "caffe"})
    with pytest.raises(ConfigError, match="expected int"):
        from_mapping(ModelConfig, {"n_atoms": "many"})
    assert from_mapping(ModelConfig, {"widths": [8, 8, 16, 16]}).widths == (8, 8, 16, 16)


def test_preset_lookup_and_validation():
    assert preset("small").n_atoms == 32
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="odd"):
        ModelConfig(atom_size=4)


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(bad)
