"""The text-encoder interface and the pooling every transformer-based encoder shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from mnm_core.errors import TextEncoderError

if TYPE_CHECKING:
    import torch


class TextEncoder(ABC):
    """Texts → N×dim float32 features.

    `fingerprint` names the encoder, model and pooling ("minilm:all-MiniLM-L6-v2:mean"); a checkpoint
    stores the fingerprint its Φγ/Φβ heads were trained with and refuses any other. Implementations
    may be called from a background thread, one call at a time.
    """

    name: str = "abstract"
    dim: int = 0
    fingerprint: str = ""

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """N texts → N×dim float32 array."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint}, dim={self.dim})"


def check_texts(texts: list[str]) -> None:
    """Encoders take a non-empty list of strings; anything else is a TextEncoderError."""
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise TextEncoderError("encode() takes a non-empty list of strings")


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool B×T×C hidden states over the valid tokens (mask B×T, right-padded): 'mean' or 'last'."""
    mask = mask.to(hidden.dtype)
    if mode == "mean":
        return (hidden * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp_min(1.0)
    if mode == "last":
        last = (mask.sum(dim=1).long() - 1).clamp_min(0)
        return hidden[range(hidden.shape[0]), last]
    raise TextEncoderError(f"unknown pooling {mode!r}; use 'mean' or 'last'")


def to_features(pooled: torch.Tensor) -> np.ndarray:
    """B×C tensor → contiguous float32 numpy array."""
    return np.ascontiguousarray(pooled.detach().float().cpu().numpy(), dtype=np.float32)


__all__ = ["TextEncoder", "check_texts", "pool", "to_features"]
