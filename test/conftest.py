"""Shared fixtures: paths and small random models (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def random_dictionary(n_atoms: int, atom_size: int, seed: int = 0) -> torch.Tensor:
    """A K×k×k dictionary of random unit-norm atoms."""
    atoms = torch.randn(n_atoms, atom_size, atom_size, generator=torch.Generator().manual_seed(seed))
    return atoms / atoms.flatten(1).norm(dim=1)[:, None, None]
