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
from training.exposure import expose

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
                     thumb_size: int, batch: int = 32, with_grey: bool = False,
                     exposure: torch.Tensor | None = None) -> TextFeatures:
    """Each image's prompt as the node writes it (`describe_frame`: thumbnail, I_pir⁰, words), encoded
    in batches, each distinct prompt once.

    `with_grey` appends the rows of the grey prompts (the image's luminance as a grey RGB image), and
    `exposure` (one γ per image, training/exposure.py) a block of the exposed frames' prompts (colour, then
    grey with `with_grey`): `prompt_rows` gives a sample's row in that layout.
    """
    from tqdm import tqdm

    from mnm_core.text.frame_prompt import describe_frame

    columns: list[list[str]] = []
    for i, image in enumerate(tqdm(images, desc="prompts", leave=False)):
        rgb = image.vis.astype(np.float32) / 255.0
        frames = _with_grey(rgb, with_grey)
        if exposure is not None:
            frames += _with_grey(expose(rgb, float(exposure[i])), with_grey)
        columns.append([describe_frame(model, frame, config.prompt_style, thumb_size) for frame in frames])
    prompts = [prompt for block in zip(*columns, strict=True) for prompt in block]  # block: one variant of every image
    distinct = sorted(set(prompts))
    rows = np.concatenate([encoder.encode(distinct[i:i + batch]) for i in range(0, len(distinct), batch)]) \
        if distinct else np.zeros((0, encoder.dim), np.float32)
    row_of = {prompt: row for row, prompt in enumerate(distinct)}
    features = torch.from_numpy(rows[[row_of[prompt] for prompt in prompts]].astype(np.float32))
    return TextFeatures(features, encoder.fingerprint, prompts)


def _with_grey(rgb: np.ndarray, with_grey: bool) -> list[np.ndarray]:
    """[the frame] or [the frame, its luminance as a grey RGB frame]."""
    return [rgb, np.repeat(luminance(rgb)[..., None], 3, axis=2)] if with_grey else [rgb]


def prompt_count(count: int, with_grey: bool, with_exposure: bool) -> int:
    """How many rows `compute_features` gives for `count` images."""
    return count * (2 if with_grey else 1) * (2 if with_exposure else 1)


def prompt_rows(images: torch.Tensor, count: int, grey: torch.Tensor | None, exposed: torch.Tensor | None,
                with_grey: bool) -> torch.Tensor:
    """Each sample's row in `compute_features`' layout for `count` images: its image index, moved to the
    grey rows where `grey` and to the exposed block where `exposed` (masks, or None for none)."""
    rows = images.clone()
    if grey is not None:
        rows += count * grey
    if exposed is not None:
        rows += count * (2 if with_grey else 1) * exposed
    return rows


def set_standardisation(model: VgiiModel, features: torch.Tensor) -> None:
    """Store the training set's feature mean and std (floored) in the model's buffers."""
    model.text_mean.copy_(features.mean(dim=0))
    model.text_std.copy_(features.std(dim=0).clamp_min(1e-3))
