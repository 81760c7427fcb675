"""Colour and size handling: BT.601 (full range) Y/Cb/Cr and padding to the network's size multiple.

Images here are numpy arrays: colour H×W×3 and luminance H×W, float32 in [0, 1] unless said otherwise.
"""

from __future__ import annotations

import numpy as np

from mnm_core.config import SIZE_MULTIPLE
from mnm_core.errors import InputError

_RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ],
    dtype=np.float32,
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR.astype(np.float64)).astype(np.float32)
_CHROMA_OFFSET = np.array([0.0, 0.5, 0.5], dtype=np.float32)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB in [0, 1] → H×W×3 Y, Cb, Cr in [0, 1] (BT.601 full range, chroma offset 0.5)."""
    _check_colour(rgb)
    return rgb.astype(np.float32) @ _RGB_TO_YCBCR.T + _CHROMA_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_ycbcr`, clipped to [0, 1]."""
    _check_colour(ycbcr)
    rgb = (ycbcr.astype(np.float32) - _CHROMA_OFFSET) @ _YCBCR_TO_RGB.T
    return np.clip(rgb, 0.0, 1.0)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB in [0, 1] → H×W Y in [0, 1]."""
    _check_colour(rgb)
    return rgb.astype(np.float32) @ _RGB_TO_YCBCR[0]


def _check_colour(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an H×W×3 image, got shape {image.shape}")


def padded_size(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """The smallest (H', W') ≥ (height, width) that are multiples of `multiple`."""
    if height < 1 or width < 1:
        raise InputError(f"image size {height}×{width} is empty; frames need at least 1×1 pixels")
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(image: np.ndarray, multiple: int = SIZE_MULTIPLE) -> np.ndarray:
    """Pad the first two axes by edge replication up to multiples of `multiple` (bottom/right).

    Edge replication, unlike reflection, works for any size down to 1×1.
    """
    height, width = image.shape[:2]
    target_h, target_w = padded_size(height, width, multiple)
    pad = [(0, target_h - height), (0, target_w - width)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad, mode="edge")


def crop_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Undo `pad_to_multiple`: keep the top-left height×width."""
    return image[:height, :width]


__all__ = [
    "crop_to",
    "luminance",
    "pad_to_multiple",
    "padded_size",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]
