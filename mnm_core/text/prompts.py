"""Scene prompts: a short factual description of a frame from measured image statistics.

The slow path describes the visible frame and the initial pseudo-IR I_pir⁰ in words a text encoder
can use: illumination, contrast, dominant colours, likely warm objects (bright blobs of I_pir⁰, with
size and position), haze and texture cues.
`full` gives every cue; `simple` one short sentence (the paper compares both). Deterministic: the same
images give the same text; numbers are rounded so that sensor noise rarely changes the words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnm_core.colour import luminance
from mnm_core.errors import ConfigError, InputError

STYLES = ("full", "simple")

_LEVELS = ((0.12, "very dark"), (0.25, "dark"), (0.40, "dim"), (0.60, "moderately lit"), (0.80, "bright"))
_HUES = ((15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (260, "blue"),
         (290, "purple"), (335, "magenta"), (361, "red"))
_GRID_ROWS = ("upper", "middle", "lower")
_GRID_COLS = ("left", "centre", "right")
MIN_BLOB_FRACTION = 0.002
"""Warm blobs smaller than this fraction of the image are ignored (noise)."""


@dataclass(frozen=True)
class SceneStats:
    """The measurements behind a prompt (fractions and means in [0, 1])."""

    brightness: float
    contrast: float
    colourful_fraction: float
    colours: tuple[str, ...]
    warm_fraction: float
    warm_blobs: int
    warm_location: str
    warm_largest: float
    dark_channel: float
    texture: float


def describe_scene(rgb: np.ndarray, pseudo_ir: np.ndarray, style: str = "full") -> str:
    """rgb H×W×3 float32 in [0, 1], pseudo_ir H×W float32 in [0, 1] (I_pir⁰) → one short description.

    The image alone decides the words: no sentence compares it with an earlier frame, because training
    describes still images and the Φγ/Φβ heads never learn from such a sentence.
    """
    if style not in STYLES:
        raise ConfigError(f"unknown prompt style {style!r}; use one of {list(STYLES)}")
    stats = measure_scene(rgb, pseudo_ir)
    if style == "simple":
        return _simple(stats)
    return _full(stats)


def measure_scene(rgb: np.ndarray, pseudo_ir: np.ndarray) -> SceneStats:
    """The statistics `describe_scene` puts into words."""
    _check_inputs(rgb, pseudo_ir)
    rgb = np.clip(rgb.astype(np.float32), 0.0, 1.0)
    y = luminance(rgb)
    colourful, colours = _dominant_colours(rgb)
    warm_fraction, blobs, location, largest = _warm_blobs(np.clip(pseudo_ir.astype(np.float32), 0.0, 1.0))
    return SceneStats(
        brightness=float(y.mean()),
        contrast=float(y.std()),
        colourful_fraction=colourful,
        colours=colours,
        warm_fraction=warm_fraction,
        warm_blobs=blobs,
        warm_location=location,
        warm_largest=largest,
        dark_channel=_dark_channel(rgb),
        texture=_texture(y),
    )


def _check_inputs(rgb: np.ndarray, pseudo_ir: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"describe_scene: rgb must be an H×W×3 array, got {getattr(rgb, 'shape', type(rgb))}")
    if not isinstance(pseudo_ir, np.ndarray) or pseudo_ir.shape != rgb.shape[:2]:
        raise InputError(f"describe_scene: pseudo_ir must be H×W = {rgb.shape[:2]}, "
                         f"got {getattr(pseudo_ir, 'shape', type(pseudo_ir))}")
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError(f"describe_scene: image {rgb.shape[0]}×{rgb.shape[1]} is too small to describe")


def _dominant_colours(rgb: np.ndarray) -> tuple[float, tuple[str, ...]]:
    """Fraction of clearly coloured pixels, and the one or two hue names covering most of them."""
    high = rgb.max(axis=2)
    low = rgb.min(axis=2)
    chroma = high - low
    saturation = chroma / np.maximum(high, 1e-6)
    coloured = (saturation > 0.25) & (high > 0.15)
    fraction = float(coloured.mean())
    if fraction < 0.05:
        return fraction, ()
    r, g, b = (rgb[:, :, i][coloured] for i in range(3))
    c, h = chroma[coloured], high[coloured]
    hue = np.where(h == r, (g - b) / c % 6.0, np.where(h == g, (b - r) / c + 2.0, (r - g) / c + 4.0)) * 60.0
    names = [name for _, name in _HUES]
    bins = np.searchsorted([edge for edge, _ in _HUES], hue, side="right")
    counts: dict[str, int] = {}
    for index, count in zip(*np.unique(np.minimum(bins, len(names) - 1), return_counts=True)):
        counts[names[index]] = counts.get(names[index], 0) + int(count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    total = sum(counts.values())
    return fraction, tuple(name for name, count in ranked[:2] if count >= 0.2 * total)


def _warm_blobs(pseudo_ir: np.ndarray) -> tuple[float, int, str, float]:
    """Bright regions of I_pir⁰ (likely warm objects): area fraction, count, place and size of the largest."""
    from scipy import ndimage

    threshold = max(float(pseudo_ir.mean() + 2.0 * pseudo_ir.std()), 0.5)
    hot = pseudo_ir > threshold
    labels, count = ndimage.label(hot)
    if count == 0:
        return 0.0, 0, "", 0.0
    areas = np.bincount(labels.ravel())[1:] / hot.size
    keep = np.flatnonzero(areas >= MIN_BLOB_FRACTION)
    if keep.size == 0:
        return float(hot.mean()), 0, "", 0.0
    largest = int(keep[np.argmax(areas[keep])])
    row, col = ndimage.center_of_mass(hot, labels, largest + 1)
    height, width = hot.shape
    place = f"{_GRID_ROWS[min(int(3 * row / height), 2)]} {_GRID_COLS[min(int(3 * col / width), 2)]}"
    place = "centre" if place == "middle centre" else place
    return float(areas[keep].sum()), int(keep.size), place, float(areas[largest])


def _dark_channel(rgb: np.ndarray, patch: int = 7) -> float:
    """Mean of the dark channel (local minimum over colours and a patch): high in haze and fog."""
    from scipy import ndimage

    return float(ndimage.minimum_filter(rgb.min(axis=2), size=patch, mode="nearest").mean())


def _texture(y: np.ndarray) -> float:
    """Mean absolute luminance gradient: low for smooth, featureless or foggy scenes."""
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def _level(brightness: float) -> str:
    return next((name for limit, name in _LEVELS if brightness < limit), "very bright")


def _contrast(contrast: float) -> str:
    return "low" if contrast < 0.08 else "moderate" if contrast < 0.18 else "high"


def _hazy(stats: SceneStats) -> bool:
    return stats.dark_channel > 0.35 and stats.contrast < 0.08 and stats.colourful_fraction < 0.3


def _percent(value: float) -> str:
    return f"{round(100 * value)}%"


def _full(stats: SceneStats) -> str:
    sentences = [f"A {_level(stats.brightness)} scene (mean brightness {_percent(stats.brightness)}) "
                 f"with {_contrast(stats.contrast)} contrast."]
    if stats.colours:
        sentences.append(f"Dominant colours: {' and '.join(stats.colours)}.")
    else:
        sentences.append("Colours: mostly grey or unsaturated.")
    if stats.warm_blobs == 1:
        sentences.append(f"Likely warm object: one bright region in the infrared estimate at the "
                         f"{stats.warm_location}, covering {_percent(stats.warm_largest)} of the view.")
    elif stats.warm_blobs:
        sentences.append(f"Likely warm objects: {stats.warm_blobs} bright regions in the infrared estimate, "
                         f"the largest at the {stats.warm_location} covering {_percent(stats.warm_largest)} "
                         "of the view.")
    else:
        sentences.append("No distinct warm objects in the infrared estimate.")
    cues = []
    if _hazy(stats):
        cues.append("hazy or foggy")
    if stats.texture < 0.02:
        cues.append("little texture")
    if cues:
        sentences.append(f"Visibility cues: {', '.join(cues)}.")
    return " ".join(sentences)


def _simple(stats: SceneStats) -> str:
    extras = []
    if stats.warm_blobs:
        extras.append("a warm object" if stats.warm_blobs == 1 else "warm objects")
    if _hazy(stats):
        extras.append("haze")
    tail = f" with {' and '.join(extras)}" if extras else ""
    return f"A {_level(stats.brightness)}, {_contrast(stats.contrast)}-contrast scene{tail}."


__all__ = ["STYLES", "SceneStats", "describe_scene", "measure_scene"]
