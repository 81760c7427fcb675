"""The size the fast path runs at: frames larger than `max_side` on their long side are downscaled.

The networks learned warm objects at the pixel sizes of their training frames (about 500–640 pixels
wide, and whole frames shrunk to 128); on larger frames the same person covers more pixels than they
ever saw, and finding warm objects gets harder (docs/training.md, "Working resolution"). Running the fast
path on a downscaled copy keeps objects at familiar sizes and costs fewer MACs. Nothing of the visible
image is lost: the pseudo-IR is smooth and is upsampled, and the fused image is the full-resolution
visible Y plus the upsampled change the fusion made at the working size,

    I_f = y + up(I_f' − y')        (y' = down(y), I_f' = the fused Y at the working size)

which for the residual rule is y + up(D ⋆ ΔS), the same rule at the working size.
"""

from __future__ import annotations

import cv2
import numpy as np


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) the fast path runs at: the frame's own size when max_side is 0 or not exceeded, else the
    frame scaled so that its long side is max_side (aspect kept, at least 1 pixel)."""
    long_side = max(height, width)
    if max_side <= 0 or long_side <= max_side:
        return height, width
    scale = max_side / long_side
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_working_size(y: np.ndarray, max_side: int) -> np.ndarray:
    """H×W float32 luminance → its `working_size` (area interpolation); the same array when no change."""
    height, width = working_size(*y.shape, max_side)
    if (height, width) == y.shape:
        return y
    return cv2.resize(y, (width, height), interpolation=cv2.INTER_AREA)


def to_frame_size(pseudo_ir: np.ndarray, fused_y: np.ndarray, y_work: np.ndarray,
                  y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs at the working size → the frame's size: the pseudo-IR upsampled (bilinear), the fused Y
    as the frame's Y plus the upsampled change the fusion made (see the module docstring)."""
    if y_work.shape == y.shape:
        return pseudo_ir, fused_y
    size = (y.shape[1], y.shape[0])
    upsampled_ir = cv2.resize(pseudo_ir, size, interpolation=cv2.INTER_LINEAR)
    change = cv2.resize(fused_y - y_work, size, interpolation=cv2.INTER_LINEAR)
    return upsampled_ir, y + change


__all__ = ["to_frame_size", "to_working_size", "working_size"]
