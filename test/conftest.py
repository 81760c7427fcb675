"""Shared fixtures: paths and small random models (no shared data needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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


def write_tiny_checkpoint(path: Path, seed: int, config=None) -> dict[str, torch.Tensor]:
    """A `tiny` VgiiModel with random weights of `seed`, saved to `path`; returns its state."""
    from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
    from mnm_core.config import preset
    from mnm_core.model import VgiiModel

    config = config or preset("tiny")
    torch.manual_seed(seed)
    model = VgiiModel(config)
    model.set_dictionary(random_dictionary(config.n_atoms, config.atom_size))
    save_checkpoint(path, model, CheckpointInfo("vgii", "tiny", config, extra={"seed": seed}))
    return model.state_dict()


def write_pair(vis_dir: Path, ir_dir: Path, name: str, rng: np.random.Generator, size: int = 40) -> None:
    """A smooth random RGB image and an 'IR' image that is its inverted luminance plus a warm blob."""
    from PIL import Image

    coarse = rng.random((5, 5, 3))
    vis = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR))
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.integers(size // 4, size - size // 4, 2)
    blob = 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
    ir = np.clip(255 - vis.mean(axis=2) * 0.7 + blob, 0, 255).astype(np.uint8)
    vis_dir.mkdir(parents=True, exist_ok=True)
    ir_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(vis).save(vis_dir / f"{name}.png")
    Image.fromarray(ir).save(ir_dir / f"{name}.png")


@pytest.fixture(scope="session")
def pair_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small sets of made-up aligned pairs (synth_a 4, synth_b 3, synth_val 2) for training tests."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for set_name, count in (("synth_a", 4), ("synth_b", 3), ("synth_val", 2)):
        for i in range(count):
            write_pair(root / set_name / "vis", root / set_name / "ir", f"{i:03d}", rng)
    return root
