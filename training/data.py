"""Paired IR/visible training data: folder layouts, an in-memory uint8 cache, the held-out validation
split, random crops with whole-frame context, augmentation that keeps the visible/IR relation.

Every set is read once into memory as uint8 arrays (visible RGB H×W×3, IR H×W), so a training step
costs only a crop and a few arithmetic operations. All randomness comes from a `torch.Generator` the
caller passes in: seeding it from (seed, step, rank) makes every batch reproducible after a resume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mnm_core.colour import luminance
from mnm_core.config import SIZE_MULTIPLE, DataConfig
from mnm_core.errors import DataError

LOGGER = logging.getLogger(__name__)

LAYOUTS: dict[str, tuple[str, str]] = {
    "mnm": ("vis", "ir"),
    "msrs": ("vi", "ir"),
    "llvip": ("visible", "infrared"),
    "m3fd": ("Vis", "Ir"),
    "kaist": ("visible", "lwir"),
}
"""Layout name → (visible folder name, infrared folder name). Pairs share their path below these."""

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass
class PairedImage:
    """One aligned pair, uint8: vis H×W×3 RGB (or H×W luminance, as packed for training), ir H×W."""

    vis: np.ndarray
    ir: np.ndarray
    set_name: str
    name: str
    files: tuple[Path, Path] | None = None
    """The (visible, infrared) files the pair was read from, if any."""


def luminance_u8(vis: np.ndarray) -> np.ndarray:
    """The 8-bit luminance (H×W uint8) of a uint8 visible image: what a pack stores for an RGB image, and
    the H×W luminance itself when the image is already packed."""
    if vis.ndim == 2:
        return vis
    return np.round(luminance(vis.astype(np.float32) / 255.0) * 255.0).astype(np.uint8)


def find_pairs(set_dir: Path, layout: str) -> list[tuple[Path, Path]]:
    """(visible, infrared) paths of every pair below `set_dir` in `layout`, sorted.

    Each folder named like the layout's visible folder (at any depth, e.g. KAIST's set00/V000/visible)
    is matched with its sibling infrared folder; files pair by relative path, extensions may differ.
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)}")
    vis_name, ir_name = LAYOUTS[layout]
    if not set_dir.is_dir():
        raise DataError(f"data set folder {set_dir} does not exist; check data.root and the set names")
    vis_dirs = [set_dir / vis_name] if (set_dir / vis_name).is_dir() else sorted(set_dir.rglob(vis_name))
    pairs = []
    for vis_dir in vis_dirs:
        ir_dir = vis_dir.parent / ir_name
        if not ir_dir.is_dir():
            continue
        ir_files = {p.relative_to(ir_dir).with_suffix(""): p for p in ir_dir.rglob("*")
                    if p.suffix.lower() in IMAGE_SUFFIXES}
        for vis_path in sorted(vis_dir.rglob("*")):
            if vis_path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            ir_path = ir_files.get(vis_path.relative_to(vis_dir).with_suffix(""))
            if ir_path is not None:
                pairs.append((vis_path, ir_path))
    if not pairs:
        raise DataError(f"no {vis_name}/+{ir_name}/ image pairs below {set_dir} (layout {layout!r})")
    return pairs


def read_pair(vis_path: Path, ir_path: Path, set_name: str) -> PairedImage:
    """Load one pair as uint8; IR stored as RGB is reduced to one channel; sizes must agree."""
    from PIL import Image

    try:
        vis = np.asarray(Image.open(vis_path).convert("RGB"))
        ir = np.asarray(Image.open(ir_path).convert("L"))
    except OSError as exc:
        raise DataError(f"cannot read pair {vis_path} / {ir_path}: {exc}") from exc
    if vis.shape[:2] != ir.shape:
        raise DataError(f"pair {vis_path.name} is not aligned: visible {vis.shape[:2]}, infrared {ir.shape}")
    return PairedImage(vis, ir, set_name, vis_path.stem, (vis_path, ir_path))


def load_sets(root: Path, names: tuple[str, ...] | list[str], layout: str, limit: int = 0) -> list[PairedImage]:
    """All pairs of the named sets (at most `limit` per set when > 0), read into memory."""
    images = []
    for name in names:
        pairs = find_pairs(root / name, layout)
        if limit > 0:
            pairs = pairs[:limit]
        images.extend(read_pair(v, i, name) for v, i in pairs)
        LOGGER.info("loaded %d pairs from %s", len(pairs), root / name)
    return images


def split_holdout(images: list[PairedImage], every: int) -> tuple[list[PairedImage], list[PairedImage]]:
    """(train, validation): every `every`-th pair of each set (in load order, i.e. sorted names) is held out.

    Deterministic and per set, so the validation split has day road scenes (RoadScene, M3SVD) and
    MSRS's day and night frames in their training proportions.
    """
    position: dict[str, int] = {}
    train, val = [], []
    for image in images:
        index = position[image.set_name] = position.get(image.set_name, -1) + 1
        (val if index % every == every // 2 else train).append(image)
    return train, val


def photometric(rgb: np.ndarray, strength: float, gen: torch.Generator) -> np.ndarray:
    """Random brightness, contrast, gamma and per-channel gain of an H×W×3 (or H×W) float image in [0, 1]."""
    if strength <= 0:
        return rgb
    u = (torch.rand(6, generator=gen).numpy() * 2 - 1) * strength
    gains = 1.0 + 0.5 * (u[3:6] if rgb.ndim == 3 else u[3])
    out = rgb * gains * (1.0 + u[0])
    mean = out.mean()
    out = (out - mean) * (1.0 + u[1]) + mean
    return np.clip(out, 0.0, 1.0) ** float(np.exp(u[2]))


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-averaged (downscaling) or bilinear (upscaling) resize of a uint8 image."""
    import cv2

    shrinking = width < image.shape[1] and height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class CropSampler:
    """Random batches of (visible Y, IR) pairs: crops, or whole frames downscaled for context.

    A `context_fraction` of the samples are the whole frame resized to crop×crop (what is warm often
    depends on the scene: sky, road, a person against a wall); the rest are random crops of crop_size
    at full resolution (or zoomed out by up to `zoom_out_max`, in by up to `zoom_in_max`), large enough
    to hold whole objects. Both get a random horizontal flip; only the visible image gets the (optional,
    default off) photometric augmentation.
    """

    def __init__(self, images: list[PairedImage], config: DataConfig) -> None:
        if not images:
            raise DataError("no training images")
        if config.crop_size % SIZE_MULTIPLE:
            raise DataError(f"crop_size must be a multiple of {SIZE_MULTIPLE}, got {config.crop_size}")
        self.images = images
        self.config = config
        sets = sorted({im.set_name for im in images})
        counts = {s: sum(im.set_name == s for im in images) for s in sets}
        weights = [1.0 / counts[im.set_name] if config.balance_sets else 1.0 for im in images]
        self.weights = torch.tensor(weights, dtype=torch.float64)
        size = config.crop_size
        self.context = [(resize(im.vis, size, size), resize(im.ir, size, size)) for im in images]

    def sample(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(vis Y B×1×c×c, ir B×1×c×c, image indices B), floats in [0, 1]."""
        indices = torch.multinomial(self.weights, batch, replacement=True, generator=gen)
        vis, ir = zip(*(self._sample_one(int(i), gen) for i in indices))
        return torch.from_numpy(np.stack(vis))[:, None], torch.from_numpy(np.stack(ir))[:, None], indices

    def _sample_one(self, index: int, gen: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        if bool(torch.rand(1, generator=gen) < self.config.context_fraction):
            vis, ir = self.context[index]
        else:
            vis, ir = self._crop(self.images[index], gen)
        vis_crop = vis.astype(np.float32) / 255.0
        ir_crop = ir.astype(np.float32) / 255.0
        if bool(torch.rand(1, generator=gen) < 0.5):
            vis_crop, ir_crop = vis_crop[:, ::-1], ir_crop[:, ::-1]
        vis_crop = photometric(vis_crop, self.config.photometric, gen)
        y = luminance(vis_crop) if vis_crop.ndim == 3 else vis_crop  # packed data holds Y already
        return np.ascontiguousarray(y), np.ascontiguousarray(ir_crop)

    def _crop(self, image: PairedImage, gen: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random crop_size crop (uint8) of a window of crop_size·s pixels, s uniform in
        [1/zoom_in_max, zoom_out_max], resized to crop_size; images smaller than the window are
        upscaled to fit one."""
        size = self.config.crop_size
        lowest, highest = 1.0 / self.config.zoom_in_max, self.config.zoom_out_max
        zoom = 1.0
        if highest > lowest:  # no draw otherwise: earlier configs keep their exact batches
            zoom = lowest + float(torch.rand(1, generator=gen)) * (highest - lowest)
        height, width = image.ir.shape
        window = min(round(size * zoom), height, width) if min(height, width) >= size else round(size * min(zoom, 1))
        vis, ir = image.vis, image.ir
        if height < window or width < window:
            scale = window / min(height, width)
            new_width, new_height = max(window, round(width * scale)), max(window, round(height * scale))
            vis, ir = resize(vis, new_width, new_height), resize(ir, new_width, new_height)
            height, width = ir.shape
        top = int(torch.randint(0, height - window + 1, (1,), generator=gen))
        left = int(torch.randint(0, width - window + 1, (1,), generator=gen))
        vis, ir = vis[top:top + window, left:left + window], ir[top:top + window, left:left + window]
        if window != size:
            vis, ir = resize(vis, size, size), resize(ir, size, size)
        return vis, ir


def centre_crop(image: PairedImage, max_side: int) -> PairedImage:
    """The centred crop of at most max_side, rounded down to the network's size multiple."""
    height, width = image.ir.shape
    h = min(height, max_side) // SIZE_MULTIPLE * SIZE_MULTIPLE
    w = min(width, max_side) // SIZE_MULTIPLE * SIZE_MULTIPLE
    top, left = (height - h) // 2, (width - w) // 2
    return PairedImage(image.vis[top:top + h, left:left + w], image.ir[top:top + h, left:left + w],
                       image.set_name, image.name)

