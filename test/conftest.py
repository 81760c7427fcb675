"""Shared fixtures: paths and small random models (no shared data needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mnm_ros.qos import large_data_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

# Fast DDS reads its XML profile once per process, when the first participant is created: the
# large-data profile (as the launch file applies it) must be in place before ANY test module starts
# a ROS context in this process, or 640×480 frames sent from here fall back to lossy UDP fragments.
os.environ.update(large_data_environment())


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def random_dictionary(n_atoms: int, atom_size: int, seed: int = 0) -> torch.Tensor:
    """A K×k×k dictionary of random unit-norm atoms."""
    atoms = torch.randn(n_atoms, atom_size, atom_size, generator=torch.Generator().manual_seed(seed))
    return atoms / atoms.flatten(1).norm(dim=1)[:, None, None]
