"""Night frames as an auto-exposing camera gives them: the same dark scene, brightened by a gamma.

A robot's camera exposes for the scene, so at night it delivers bright, noisy (often grey) frames where
the training sets' night frames (MSRS) are dark. The pseudo-IR path must find the same warm objects in
both. `train.night_exposure` trains on that: each dark training frame (mean luminance below DARK_MEAN)
gets one fixed gamma γ ≤ 1 that raises its mean luminance to a target drawn once from TARGET_MEANS, and
that part of each batch sees its crops as Y^γ with the prompt of the exposed frame. The IR target is
unchanged. γ is fixed per image so the prompt's features can be computed ahead, like the other prompts.

`python -m training.exposure --config CFG --out DIR` writes the held-out dark frames of CFG's training
sets as they are and as exposed (colour and grey), in the layout `training.compare_models --data-root`
reads: the probe of how much a model loses to exposure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from mnm_core.colour import luminance
from training.data import PairedImage, luminance_u8

DARK_MEAN = 0.25
"""Frames whose mean luminance is below this are night frames an auto-exposing camera would brighten."""
TARGET_MEANS = (0.4, 0.7)
"""The exposed frame's mean luminance is drawn uniformly from this range (TNO's grey night frames: 0.5–0.7)."""


def gamma_for_mean(y: np.ndarray, target: float, iterations: int = 40) -> float:
    """γ in (0, 1] with mean(y^γ) ≈ target for a luminance image y in [0, 1] (bisection: the mean falls as
    γ grows); 1 when the image is already that bright."""
    y = y.astype(np.float64)
    if y.mean() >= target:
        return 1.0
    low, high = 1e-3, 1.0
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if (y ** mid).mean() > target else (low, mid)
    return 0.5 * (low + high)


def night_exposure_gammas(images: list[PairedImage], seed: int) -> torch.Tensor:
    """One γ per image: < 1 for the dark ones (to a target mean drawn from TARGET_MEANS), 1 for the rest."""
    rng = np.random.default_rng(seed)
    gammas = []
    for image in images:
        target = rng.uniform(*TARGET_MEANS)  # drawn for every image: an image's γ does not depend on the others
        y = luminance_u8(image.vis).astype(np.float32) / 255.0  # 8-bit, as packed: the same γ either way
        gammas.append(gamma_for_mean(y, target) if y.mean() < DARK_MEAN else 1.0)
    return torch.tensor(gammas, dtype=torch.float32)


def expose(rgb: np.ndarray, gamma: float) -> np.ndarray:
    """An H×W×3 float RGB frame in [0, 1] with its luminance raised to Y^γ and its chromaticity kept."""
    y = luminance(rgb)
    gain = np.power(y, gamma) / np.maximum(y, 1e-4)
    return np.clip(rgb * gain[..., None], 0.0, 1.0).astype(np.float32)


def expose_luminance(y: torch.Tensor, gammas: torch.Tensor, exposed: torch.Tensor) -> torch.Tensor:
    """A batch of luminance crops (B×1×H×W in [0, 1]) with the `exposed` ones (B booleans) raised to their
    image's γ (B values), the others as they are."""
    per_sample = (y.shape[0], 1, 1, 1)
    gammas, exposed = gammas.to(y.device).view(per_sample), exposed.to(y.device).view(per_sample)
    return torch.where(exposed, y.clamp_min(0.0) ** gammas, y)


def write_probe(images: list[PairedImage], gammas: torch.Tensor, out: Path) -> int:
    """The dark images as `night/`, exposed as `night_exposed/` and exposed in grey as `night_exposed_grey/`
    (each with vis/ and ir/ PNGs) under `out`; returns how many images were written."""
    from PIL import Image

    written = 0
    for image, gamma in zip(images, gammas.tolist(), strict=True):
        if gamma >= 1.0 or image.vis.ndim != 3:
            continue
        rgb = image.vis.astype(np.float32) / 255.0
        exposed = expose(rgb, gamma)
        grey = np.repeat(luminance(exposed)[..., None], 3, axis=2)
        for set_name, vis in (("night", rgb), ("night_exposed", exposed), ("night_exposed_grey", grey)):
            for folder, array in (("vis", np.round(vis * 255).astype(np.uint8)), ("ir", image.ir)):
                (out / set_name / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(out / set_name / folder / f"{image.set_name}_{image.name}.png")
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    from training.train import load_config, load_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML whose held-out split to use")
    parser.add_argument("--out", required=True, help="folder for night/, night_exposed/, night_exposed_grey/")
    args = parser.parse_args(argv)
    train_config, data_config, _ = load_config(args.config)
    _, held_out = load_data(data_config)
    count = write_probe(held_out, night_exposure_gammas(held_out, train_config.seed), Path(args.out))
    print(f"{args.out}: {count} held-out dark frames, as they are and exposed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
