"""Folders of aligned infrared–visible pairs: `DIR/vis/NAME.ext` + `DIR/ir/NAME.ext` (layout of ../shared/data).

Listing and loading are separate, so that a problem with one pair (missing partner, unreadable file,
sizes that differ) is reported for that pair and the others go on. Loaded images are uint8:
- vis: H×W×3 RGB, or H×W where the file is gray or stores three equal channels (treated as gray);
- ir: H×W; three equal channels are collapsed, other colour IR goes through MATLAB `rgb2gray`;
  16-bit IR (e.g. radiometric PNG) is min–max rescaled to 0..255, with a note.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnm_core.errors import DataError

LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class Pair:
    """One listed pair: its name (the file stem) and the two files."""

    name: str
    vis_path: Path
    ir_path: Path


@dataclass(frozen=True)
class Skipped:
    """A pair (or lone file) left out, and why."""

    name: str
    reason: str


@dataclass
class LoadedPair:
    """A pair ready to score: uint8 images of the same H×W, plus notes on conversions made."""

    name: str
    vis: np.ndarray
    """H×W×3 RGB or H×W gray, uint8."""
    ir: np.ndarray
    """H×W, uint8."""
    notes: list[str] = field(default_factory=list)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as stored: uint8 or uint16, H×W or H×W×3 in RGB order (alpha dropped).

    Raises DataError naming the file when it cannot be read or decoded, or has an unsupported type.
    """
    import cv2

    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)  # cv2.imread fails silently on some paths; imdecode does not
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if image is None:
        raise DataError(f"{path}: not a readable image (empty, truncated or unknown format)")
    if image.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path}: unsupported pixel type {image.dtype}; use 8- or 16-bit images")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, 2::-1]  # BGRA → RGB
    elif image.ndim == 3 and image.shape[2] == 3:
        image = image[:, :, ::-1]  # BGR → RGB
    elif image.ndim != 2:
        raise DataError(f"{path}: unsupported image shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise DataError(f"{path}: image is {image.shape[0]}×{image.shape[1]}; need at least 2×2 pixels")
    return np.ascontiguousarray(image)


def to_uint8(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """uint8 unchanged; uint16 min–max rescaled to 0..255 (rounded). Returns the image and a note or None."""
    if image.dtype == np.uint8:
        return image, None
    low, high = int(image.min()), int(image.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    converted = np.floor((image.astype(np.float64) - low) * scale + 0.5).astype(np.uint8)
    return converted, f"16-bit image rescaled to 8 bits (values {low}..{high} → 0..255)"


def is_equal_channel(image: np.ndarray) -> bool:
    """True for an H×W×3 image whose three channels are identical (a gray image stored as colour)."""
    return image.ndim == 3 and bool(np.array_equal(image[..., 0], image[..., 1])) and bool(
        np.array_equal(image[..., 1], image[..., 2]))


def _index(folder: Path) -> tuple[dict[str, Path], list[Skipped]]:
    """Image files of a folder by stem; stems used by several files are reported, not guessed."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            by_stem[path.stem].append(path)
    files, skipped = {}, []
    for stem, paths in by_stem.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            skipped.append(Skipped(stem, f"{folder.name}/ holds several files named {stem!r} ({names})"))
        else:
            files[stem] = paths[0]
    return files, skipped


def find_pairs(data_dir: str | Path) -> tuple[list[Pair], list[Skipped]]:
    """List the pairs of `data_dir` (matched by file stem) and the files without a partner.

    Raises DataError when `data_dir/vis` or `data_dir/ir` is missing.
    """
    data_dir = Path(data_dir)
    folders = {sub: data_dir / sub for sub in ("vis", "ir")}
    for sub, folder in folders.items():
        if not folder.is_dir():
            raise DataError(f"{data_dir}: no {sub}/ folder; expected {data_dir}/vis/NAME and {data_dir}/ir/NAME")
    vis_files, skipped = _index(folders["vis"])
    ir_files, ir_skipped = _index(folders["ir"])
    skipped += ir_skipped
    ambiguous = {s.name for s in skipped}
    pairs = []
    for stem in sorted(set(vis_files) | set(ir_files)):
        if stem in ambiguous:
            continue
        if stem not in ir_files:
            skipped.append(Skipped(stem, f"no infrared partner for vis/{vis_files[stem].name} in ir/"))
        elif stem not in vis_files:
            skipped.append(Skipped(stem, f"no visible partner for ir/{ir_files[stem].name} in vis/"))
        else:
            pairs.append(Pair(stem, vis_files[stem], ir_files[stem]))
    return pairs, sorted(skipped, key=lambda s: s.name)


def load_pair(pair: Pair) -> LoadedPair:
    """Read and normalise one pair (see the module docstring); DataError for any problem with it."""
    from mnm_core.metrics import rgb2gray

    notes = []
    vis, note = to_uint8(read_image(pair.vis_path))
    if note:
        notes.append(f"vis: {note}")
    if is_equal_channel(vis):
        vis = np.ascontiguousarray(vis[..., 0])
    if vis.ndim == 2:
        notes.append("vis: gray image, fused as gray")
    ir, note = to_uint8(read_image(pair.ir_path))
    if note:
        notes.append(f"ir: {note}")
    if ir.ndim == 3:
        if is_equal_channel(ir):
            ir = np.ascontiguousarray(ir[..., 0])
        else:
            ir = rgb2gray(ir)
            notes.append("ir: colour infrared image converted to gray (rgb2gray)")
    if vis.shape[:2] != ir.shape[:2]:
        raise DataError(f"{pair.name}: sizes differ, vis/{pair.vis_path.name} is {vis.shape[1]}×{vis.shape[0]} "
                        f"but ir/{pair.ir_path.name} is {ir.shape[1]}×{ir.shape[0]} (W×H); pairs must be aligned")
    return LoadedPair(pair.name, vis, ir, notes)


__all__ = ["IMAGE_SUFFIXES", "LoadedPair", "Pair", "Skipped", "find_pairs", "is_equal_channel", "load_pair",
           "read_image", "to_uint8"]
