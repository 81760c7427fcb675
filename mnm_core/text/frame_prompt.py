"""One frame → its scene prompt, the same way in training and in the node.

The Φγ/Φβ heads learn from the prompts training writes for its images; the slow path must write the
same prompt for the same image, or the heads see features they never learned from. Both call
`describe_frame`: a square PROMPT_SIDE thumbnail of the frame, I_pir⁰ of its luminance, then
`describe_scene`. A test holds training's prompts and the refresher's to equality.
"""

from __future__ import annotations

import numpy as np
import torch

from mnm_core.colour import crop_to, luminance, pad_to_multiple
from mnm_core.model import VgiiModel
from mnm_core.text.prompts import describe_scene

PROMPT_SIDE = 64
"""The frame is described on a PROMPT_SIDE×PROMPT_SIDE thumbnail (`TrainConfig.text_thumb_size`). Until
2026-11-30 the node used the frame downscaled to 256 pixels on its long side: other statistics than
training's, and 16× the I_pir⁰ work (110 ms of one core per refresh on the 2-core machine)."""


def thumbnail(rgb: np.ndarray, side: int = PROMPT_SIDE) -> np.ndarray:
    """H×W×3 float32 → side×side float32 (area interpolation down, bilinear up)."""
    import cv2

    shrink = rgb.shape[0] >= side and rgb.shape[1] >= side
    return cv2.resize(np.ascontiguousarray(rgb, dtype=np.float32), (side, side),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


@torch.no_grad()
def describe_frame(model: VgiiModel, rgb: np.ndarray, style: str = "full", side: int = PROMPT_SIDE) -> str:
    """The prompt for one H×W×3 float32 RGB frame in [0, 1]; `model` runs I_pir⁰ on the thumbnail."""
    small = thumbnail(rgb, side)
    y = luminance(small)
    height, width = y.shape
    device = model.dictionary.device
    pseudo_ir = model.initial_pseudo_ir(torch.from_numpy(pad_to_multiple(y)[None, None].copy()).to(device))
    pseudo_ir = crop_to(pseudo_ir[0, 0].float().cpu().numpy(), height, width)
    return describe_scene(small, pseudo_ir, style)


__all__ = ["PROMPT_SIDE", "describe_frame", "thumbnail"]
