"""Scene prompts: the words follow the measured statistics, deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from mnm_core.errors import ConfigError, InputError
from mnm_core.text.prompts import describe_scene, measure_scene

H, W = 60, 90


def scene(level: float, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """A grey textured RGB image around `level`."""
    rng = np.random.default_rng(seed)
    grey = np.clip(level + noise * rng.standard_normal((H, W, 1)).astype(np.float32), 0.0, 1.0)
    return np.repeat(grey, 3, axis=2)


def blob_ir(row: int, col: int, radius: int = 6) -> np.ndarray:
    """A dark pseudo-IR with one bright disc (a warm object) centred at (row, col)."""
    yy, xx = np.mgrid[:H, :W]
    ir = np.full((H, W), 0.2, np.float32)
    ir[(yy - row) ** 2 + (xx - col) ** 2 <= radius**2] = 0.95
    return ir


def test_deterministic() -> None:
    rgb, ir = scene(0.3), blob_ir(45, 70)
    assert describe_scene(rgb, ir) == describe_scene(rgb.copy(), ir.copy())
    assert describe_scene(rgb, ir, "simple") == describe_scene(rgb, ir, "simple")


def test_illumination_and_contrast() -> None:
    flat_ir = np.full((H, W), 0.3, np.float32)
    dark = describe_scene(scene(0.05, noise=0.01), flat_ir)
    bright_rgb = scene(0.9, noise=0.01)
    bright_rgb[: H // 2] = 0.5
    bright = describe_scene(bright_rgb, flat_ir)
    assert dark.startswith("A very dark scene") and "low contrast" in dark
    assert bright.startswith("A bright scene")
    assert "high contrast" in bright


def test_warm_object_location_and_count() -> None:
    text = describe_scene(scene(0.3), blob_ir(row=48, col=75))
    assert "Likely warm object: one bright region in the infrared estimate at the lower right" in text
    two = np.maximum(blob_ir(row=48, col=75), blob_ir(row=10, col=12, radius=4))
    assert "Likely warm objects: 2 bright regions" in describe_scene(scene(0.3), two)
    stats = measure_scene(scene(0.3), blob_ir(row=10, col=12))
    assert stats.warm_blobs == 1 and stats.warm_location == "upper left"
    assert 0.01 < stats.warm_largest < 0.05
    assert "No distinct warm objects" in describe_scene(scene(0.3), np.full((H, W), 0.3, np.float32))


def test_dominant_colours() -> None:
    rgb = np.zeros((H, W, 3), np.float32)
    rgb[:, : W * 2 // 3] = (0.8, 0.1, 0.1)  # red two thirds
    rgb[:, W * 2 // 3 :] = (0.1, 0.2, 0.8)  # blue one third
    text = describe_scene(rgb, np.zeros((H, W), np.float32))
    assert "Dominant colours: red and blue." in text
    assert "mostly grey" in describe_scene(scene(0.5), np.zeros((H, W), np.float32))


def test_haze_and_low_texture() -> None:
    fog = np.full((H, W, 3), 0.75, np.float32) + np.linspace(0, 0.05, W, dtype=np.float32)[None, :, None]
    text = describe_scene(fog, np.full((H, W), 0.5, np.float32))
    assert "hazy or foggy" in text and "little texture" in text
    assert "haze" in describe_scene(fog, np.full((H, W), 0.5, np.float32), "simple")
    assert "hazy" not in describe_scene(scene(0.3, noise=0.2), blob_ir(30, 40))


def test_simple_is_one_short_sentence() -> None:
    rgb, ir = scene(0.2), blob_ir(30, 40)
    simple = describe_scene(rgb, ir, "simple")
    assert simple.count(".") == 1 and "a warm object" in simple
    assert len(simple) < len(describe_scene(rgb, ir, "full"))


def test_bad_inputs() -> None:
    with pytest.raises(ConfigError, match="prompt style"):
        describe_scene(scene(0.3), blob_ir(30, 40), "poetic")
    with pytest.raises(InputError, match="H×W×3"):
        describe_scene(np.zeros((H, W), np.float32), blob_ir(30, 40))
    with pytest.raises(InputError, match="pseudo_ir"):
        describe_scene(scene(0.3), np.zeros((H, W + 1), np.float32))
