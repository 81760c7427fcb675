"""Language conditioning (DESIGN.md §2): scene prompts, text encoders and the background (γ, β) refresh.

Encoders are chosen by `TextConfig.encoder`: `minilm` (embedded default), `hf-causal-lm`, `openai`, or
`none` (identity modulation). Heavy dependencies (torch, transformers) are imported only when an encoder
or a refresher is created.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mnm_core.config import TextConfig
from mnm_core.errors import TextEncoderError
from mnm_core.modulation import Modulation, ModulationSource
from mnm_core.text.base import TextEncoder
from mnm_core.text.prompts import describe_scene

if TYPE_CHECKING:
    from mnm_core.checkpoint import CheckpointInfo
    from mnm_core.model import VgiiModel

ENCODERS = ("minilm", "hf-causal-lm", "openai", "none")


def encoder_fingerprint(config: TextConfig) -> str:
    """The fingerprint `create_encoder(config)` will have, computed without loading anything."""
    if config.encoder == "minilm":
        from mnm_core.text.minilm import FINGERPRINT

        return FINGERPRINT
    if config.encoder == "hf-causal-lm":
        from mnm_core.text.hf_causal import fingerprint

        return fingerprint(config.model_dir, config.pooling)
    if config.encoder == "openai":
        from mnm_core.text.openai_http import fingerprint

        return fingerprint(config.server_model)
    if config.encoder == "none":
        return "none"
    raise _unknown(config.encoder)


def create_encoder(config: TextConfig) -> TextEncoder:
    """Load the configured text encoder; every failure is one TextEncoderError saying what to fix."""
    if config.encoder == "minilm":
        from mnm_core.text.minilm import MiniLmEncoder

        return MiniLmEncoder()
    if config.encoder == "hf-causal-lm":
        from mnm_core.text.hf_causal import HfCausalLmEncoder

        return HfCausalLmEncoder(config.model_dir, pooling=config.pooling,
                                 trust_remote_code=config.trust_remote_code)
    if config.encoder == "openai":
        from mnm_core.text.openai_http import OpenAiEncoder

        return OpenAiEncoder(config.url, config.server_model, timeout_s=config.timeout_s)
    if config.encoder == "none":
        raise TextEncoderError("text encoder 'none' has no encoder: it means the identity modulation "
                               "(create_modulation_source returns a plain ModulationSource)")
    raise _unknown(config.encoder)


def check_encoder(encoder_id: str, feature_dim: int | None, model: VgiiModel, info: CheckpointInfo) -> None:
    """Refuse an encoder the checkpoint's Φγ/Φβ heads were not trained with (fingerprint or dimension)."""
    trained = info.text_encoder
    if trained != encoder_id:
        advice = ("it was trained without text: set text.encoder to none" if trained == "none"
                  else "configure that encoder, or use a checkpoint trained with yours")
        raise TextEncoderError(f"text encoder {encoder_id!r} does not match the checkpoint, whose modulation "
                               f"heads were trained with {trained!r}; {advice}")
    if feature_dim is not None:
        check_dimension(encoder_id, feature_dim, model)


def check_dimension(encoder_id: str, feature_dim: int, model: VgiiModel) -> None:
    """Refuse an encoder whose features do not fit the model's Φγ/Φβ heads."""
    if feature_dim != model.config.text_dim:
        raise TextEncoderError(f"text encoder {encoder_id!r} gives {feature_dim}-d features, but the model's "
                               f"modulation heads take text_dim={model.config.text_dim}")


def create_modulation_source(model: VgiiModel, info: CheckpointInfo, config: TextConfig) -> ModulationSource:
    """The slow path for `Fuser`: a background ModulationRefresher, or the identity for encoder `none`.

    The fingerprint is checked before the encoder is loaded (no minutes spent loading a wrong LLM).
    """
    if config.encoder == "none":
        return ModulationSource(model.config.n_atoms)
    check_encoder(encoder_fingerprint(config), None, model, info)
    encoder = create_encoder(config)
    check_encoder(encoder.fingerprint, encoder.dim, model, info)
    from mnm_core.text.refresher import ModulationRefresher

    return ModulationRefresher(model, encoder, config)


def frame_modulations(model: VgiiModel, frames: Iterable[np.ndarray], config: TextConfig) -> list[Modulation | None]:
    """The modulation the node's slow path computes for each RGB frame (H×W×3 float32 in [0, 1]) with
    `config`'s encoder, frame after frame as a running refresher would (synchronously; a prompt compares
    each frame's brightness with the previous one's); None for a frame whose refresh failed.

    For tools that need the deployed modulations offline (int8 calibration, precision comparisons).
    TextEncoderError when the encoder cannot be loaded or its features do not fit the model.
    """
    from mnm_core.colour import luminance
    from mnm_core.text.refresher import ModulationRefresher

    encoder = create_encoder(config)
    check_dimension(encoder.fingerprint, encoder.dim, model)
    refresher = ModulationRefresher(model, encoder, config)
    modulations: list[Modulation | None] = []
    for rgb in frames:
        refresher.observe(rgb, luminance(rgb))
        modulations.append(refresher.current() if refresher.refresh() else None)
    return modulations


def _unknown(name: str) -> TextEncoderError:
    return TextEncoderError(f"unknown text encoder {name!r}; choose one of {list(ENCODERS)}")


__all__ = [
    "ENCODERS",
    "TextEncoder",
    "check_dimension",
    "check_encoder",
    "create_encoder",
    "create_modulation_source",
    "describe_scene",
    "encoder_fingerprint",
    "frame_modulations",
]
