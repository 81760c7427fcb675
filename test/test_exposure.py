"""Night frames as an auto-exposing camera gives them (training/exposure.py, train.night_exposure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mnm_core.colour import luminance
from training.data import PairedImage, load_sets
from training.exposure import (
    DARK_MEAN,
    TARGET_MEANS,
    expose,
    expose_luminance,
    gamma_for_mean,
    night_exposure_gammas,
    write_probe,
)


def _pair(mean: float, seed: int, name: str) -> PairedImage:
    """A textured RGB frame with roughly the given mean (uint8), and an IR frame."""
    rng = np.random.default_rng(seed)
    vis = np.clip(rng.gamma(2.0, mean / 2.0, (48, 64, 3)), 0, 1)
    return PairedImage((vis * 255).astype(np.uint8), (rng.random((48, 64)) * 255).astype(np.uint8), "set", name)


def test_gamma_brings_a_dark_frame_to_its_target_mean() -> None:
    y = luminance(_pair(0.08, 0, "a").vis.astype(np.float32) / 255)
    for target in (0.4, 0.55, 0.7):
        gamma = gamma_for_mean(y, target)
        assert 0 < gamma < 1
        assert abs(float((y.astype(np.float64) ** gamma).mean()) - target) < 1e-3
    assert gamma_for_mean(y, float(y.mean()) - 0.01) == 1.0  # already that bright


def test_only_dark_frames_are_exposed_each_with_its_own_fixed_gamma() -> None:
    images = [_pair(0.08, 0, "dark"), _pair(0.6, 1, "bright"), _pair(0.1, 2, "dark2")]
    gammas = night_exposure_gammas(images, seed=3)
    assert gammas[1] == 1.0 and bool((gammas[[0, 2]] < 1).all())
    torch.testing.assert_close(gammas, night_exposure_gammas(images, seed=3))  # a resumed run gets the same
    assert not torch.equal(gammas, night_exposure_gammas(images, seed=4))
    for image, gamma in zip(images, gammas.tolist(), strict=True):
        y = luminance(image.vis.astype(np.float32) / 255)
        if gamma < 1:
            assert y.mean() < DARK_MEAN
            assert TARGET_MEANS[0] - 1e-3 < (y.astype(np.float64) ** gamma).mean() < TARGET_MEANS[1] + 1e-3


def test_a_packed_image_gets_the_gamma_of_its_colour_original() -> None:
    """The GPU run reads 8-bit Y from its pack where a CPU run reads RGB: both must expose alike."""
    from training.pack import gray_pair

    images = [_pair(0.08, k, f"dark{k}") for k in range(4)]
    torch.testing.assert_close(night_exposure_gammas([gray_pair(image) for image in images], seed=5),
                               night_exposure_gammas(images, seed=5), rtol=0, atol=0)


def test_exposure_raises_luminance_and_keeps_the_hue() -> None:
    rgb = _pair(0.05, 5, "a").vis.astype(np.float32) / 255
    exposed = expose(rgb, 0.4)
    y, y_exposed = luminance(rgb), luminance(exposed)
    unclipped = (exposed.max(axis=2) < 0.999) & (rgb.min(axis=2) > 0.01)
    np.testing.assert_allclose(y_exposed[unclipped], y[unclipped] ** 0.4, rtol=1e-3, atol=1e-4)
    ratio = exposed[unclipped] / rgb[unclipped]
    np.testing.assert_allclose(ratio.min(axis=1), ratio.max(axis=1), rtol=0.05)  # one gain for all channels


def test_a_batch_is_exposed_only_where_asked() -> None:
    y = torch.rand(3, 1, 8, 8) * 0.2
    out = expose_luminance(y, torch.tensor([0.5, 0.3, 1.0]), torch.tensor([True, False, False]))
    torch.testing.assert_close(out[0], y[0] ** 0.5)
    torch.testing.assert_close(out[1:], y[1:], rtol=0, atol=0)


def test_prompts_of_exposed_frames_follow_the_colour_and_grey_rows() -> None:
    """compute_features' layout: colour, grey, exposed colour, exposed grey; a bright frame's exposed
    prompts are its own, a dark frame's describe a brighter scene."""
    from mnm_core.checkpoint import load_model
    from mnm_core.config import TextConfig
    from training.text_features import compute_features, create_text_encoder, prompt_count, prompt_rows

    images = [_pair(0.06, 0, "dark"), _pair(0.6, 1, "bright")]
    gammas = night_exposure_gammas(images, seed=0)
    model, _ = load_model(None)
    model.float().eval()
    config = TextConfig(encoder="minilm")
    text = compute_features(model, images, create_text_encoder(config, model.config.text_dim), config,
                            thumb_size=64, with_grey=True, exposure=gammas)
    assert text.features.shape == (prompt_count(2, True, True), 384) == (8, 384)
    colour, grey, exposed, exposed_grey = (text.prompts[i:i + 2] for i in range(0, 8, 2))
    assert exposed[1] == colour[1] and exposed_grey[1] == grey[1]
    assert "dark" in colour[0] and "dark" not in exposed[0] and "mostly grey" in exposed_grey[0]
    rows = prompt_rows(torch.tensor([0, 1, 0, 1]), 2, torch.tensor([False, True, True, False]),
                       torch.tensor([False, False, True, True]), with_grey=True)
    assert rows.tolist() == [0, 3, 6, 5]
    assert text.prompts[6] == exposed_grey[0] and text.prompts[5] == exposed[1]


def test_probe_writes_the_dark_frames_three_ways(tmp_path: Path) -> None:
    images = [_pair(0.06, 0, "dark"), _pair(0.6, 1, "bright")]
    assert write_probe(images, night_exposure_gammas(images, seed=0), tmp_path) == 1
    sets = {name: load_sets(tmp_path, [name], "mnm") for name in ("night", "night_exposed", "night_exposed_grey")}
    assert all(len(pairs) == 1 for pairs in sets.values())
    night, exposed, grey = (sets[name][0].vis.astype(np.float32) for name in sets)
    assert exposed.mean() > 3 * night.mean()
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert np.array_equal(sets["night"][0].ir, sets["night_exposed_grey"][0].ir)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_night_exposure_is_a_fraction(bad: float) -> None:
    from mnm_core.config import TrainConfig
    from mnm_core.errors import ConfigError

    with pytest.raises(ConfigError, match="night_exposure"):
        TrainConfig(night_exposure=bad)
