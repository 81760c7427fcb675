"""The inference-backend interface: one fast-path call, numpy in and out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class InferenceBackend(ABC):
    """Runs the exported fast path: (y, γ, β) → (pseudo-IR, fused Y).

    y is 1×1×H×W float32 in [0, 1] with H, W multiples of 8; γ and β are 1×K float32. Both outputs
    are 1×1×H×W float32 in [0, 1]. Implementations are not thread-safe: one caller at a time.
    """

    name: str = "abstract"
    precision: str = "fp32"

    @property
    @abstractmethod
    def n_atoms(self) -> int:
        """K, the length of γ and β."""

    @abstractmethod
    def run(self, y: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One fast-path pass."""

    def describe(self) -> str:
        """Short human-readable identity for logs and diagnostics, e.g. 'onnxruntime fp32 (CPU)'."""
        return f"{self.name} {self.precision}"
