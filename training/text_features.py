"""Stage-2 text features: one prompt per training image from its visible image and I_pir⁰, encoded once.

Uses the project's text API (mnm_core.text: `create_encoder(TextConfig)`, `prompts.describe_scene`).
When that API is missing, or the encoder is `none`, stage 2 trains with the identity modulation and the
checkpoint records text_encoder = "none".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from mnm_core.colour import luminance
from mnm_core.config import TextConfig
from mnm_core.errors import ConfigError
from mnm_core.model import VgiiModel
from training.data import PairedImage

LOGGER = logging.getLogger(__name__)


@dataclass
class TextFeatures:
    """Raw (unstandardised) encoder features, one row per image, and the encoder's fingerprint."""

    features: torch.Tensor
    fingerprint: str
    prompts: list[str]


def text_api_available() -> bool:
    try:
        from mnm_core.text import create_encoder  # noqa: F401
        from mnm_core.text.prompts import describe_scene  # noqa: F401
    except ImportError:
        return False
    return True


def create_text_encoder(config: TextConfig, text_dim: int):
    """The configured encoder, or None (identity modulation) for `none` or a missing text API."""
    if config.encoder == "none":
        return None
    if not text_api_available():
        LOGGER.warning("mnm_core.text is not available: stage 2 trains WITHOUT text conditioning "
                       "(identity modulation, text_encoder='none')")
        return None
    from mnm_core.text import create_encoder

    encoder = create_encoder(config)
    if encoder.dim != text_dim:
        raise ConfigError(f"text encoder {encoder.name} gives {encoder.dim}-d features but the model's "
                          f"text_dim is {text_dim}; pick a matching preset or encoder")
    return encoder


@torch.no_grad()
def compute_features(model: VgiiModel, images: list[PairedImage], encoder, config: TextConfig,
                     thumb_size: int, batch: int = 32, with_grey: bool = False) -> TextFeatures:
    """Each image's prompt as the node writes it (`describe_frame`: thumbnail, I_pir⁰, words), encoded
    in batches.

    `with_grey` appends the rows of the grey prompts (the image's luminance as a grey RGB image), so
    image i's grey prompt is row i + len(images) (see `train.text_grey`).
    """
    from tqdm import tqdm

    from mnm_core.text.frame_prompt import describe_frame

    colour_prompts: list[str] = []
    grey_prompts: list[str] = []
    for image in tqdm(images, desc="prompts", leave=False):
        rgb = image.vis.astype(np.float32) / 255.0
        colour_prompts.append(describe_frame(model, rgb, config.prompt_style, thumb_size))
        if with_grey:
            grey = np.repeat(luminance(rgb)[..., None], 3, axis=2)
            grey_prompts.append(describe_frame(model, grey, config.prompt_style, thumb_size))
    prompts = colour_prompts + grey_prompts
    rows = [encoder.encode(prompts[i:i + batch]) for i in range(0, len(prompts), batch)]
    features = torch.from_numpy(np.concatenate(rows).astype(np.float32))
    return TextFeatures(features, encoder.fingerprint, prompts)


def set_standardisation(model: VgiiModel, features: torch.Tensor) -> None:
    """Store the training set's feature mean and std (floored) in the model's buffers."""
    model.text_mean.copy_(features.mean(dim=0))
    model.text_std.copy_(features.std(dim=0).clamp_min(1e-3))
