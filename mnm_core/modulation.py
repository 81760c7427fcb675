"""The current language modulation (γ, β) and where the fast path gets it from.

The slow path publishes a new `Modulation` by replacing one reference; the fast path reads that
reference. In CPython a reference assignment is atomic, so neither side ever waits on a lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Modulation:
    """Per-atom modulation of the visible coefficients: γ, β as 1×K float32."""

    gamma: np.ndarray
    beta: np.ndarray
    source: str = "identity"
    """What produced it: 'identity' or the text encoder's name."""
    stamp: float = field(default_factory=time.monotonic)
    """time.monotonic() when it was computed."""
    prompt: str = ""
    """The scene description it was computed from."""

    def age_s(self) -> float:
        return time.monotonic() - self.stamp

    @classmethod
    def identity(cls, n_atoms: int) -> Modulation:
        return cls(np.ones((1, n_atoms), np.float32), np.zeros((1, n_atoms), np.float32))


class ModulationSource:
    """Gives the fast path the current modulation; this base one is the fixed identity.

    The background refresher (text conditioning) subclasses it: `observe` hands it the newest frame,
    `start`/`stop` run its thread.
    """

    def __init__(self, n_atoms: int) -> None:
        self._current = Modulation.identity(n_atoms)

    def current(self) -> Modulation:
        return self._current

    def observe(self, rgb: np.ndarray, y: np.ndarray) -> None:
        """Offer the newest frame (H×W×3 RGB float32 and H×W Y in [0, 1]); must return at once."""

    def refresh(self) -> bool:
        """Run one slow-path pass now, in the caller's thread (synchronous use: evaluation); False on failure.

        Not to be mixed with `start`: a source either refreshes in its background thread or on demand.
        """
        return True

    def start(self) -> None:
        """Start background work, if any."""

    def stop(self) -> None:
        """Stop background work; safe to call twice."""

    def stats(self) -> dict[str, float | int | str]:
        """Counters for diagnostics (refreshes, failures, last error)."""
        return {}
