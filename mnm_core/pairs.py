"""Folders of aligned infrared–visible pairs: `DIR/vis/NAME.ext` + `DIR/ir/NAME.ext` (layout of ../shared/data).

Listing and loading are separate, so that a problem with one pair (missing partner, unreadable file,
sizes that differ) is reported for that pair and the others go on. Files are decoded by mnm_core.frames,
the node's own ingest (16-bit images stretched to 8 bits with a note, alpha dropped, three equal
channels gray), so a folder gives the pixels the live node would see. Loaded images are uint8:
- vis: H×W×3 RGB, or H×W (gray);
- ir: H×W; colour IR goes through MATLAB `rgb2gray`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnm_core.errors import DataError
from mnm_core.frames import Frame, FrameError, decode_to_frame

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


def read_frame(path: str | Path) -> Frame:
    """An image file as a Frame, decoded by mnm_core.frames as the node decodes a CompressedImage.

    Raises DataError naming the file when it cannot be read or decoded, or is smaller than 2×2.
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)  # cv2.imread fails silently on some paths; imdecode does not
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        frame = decode_to_frame(raw)
    except FrameError as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from exc
    if min(frame.image.shape[:2]) < 2:
        raise DataError(f"{path}: image is {frame.image.shape[0]}×{frame.image.shape[1]}; need at least 2×2 pixels")
    return frame


def read_image(path: str | Path) -> np.ndarray:
    """An image file as stored, for scoring: uint8 H×W×3 RGB or H×W gray as the file has it (`read_frame`:
    16-bit stretched, alpha dropped)."""
    return read_frame(path).stored_rgb()


def stretch_note(frame: Frame) -> str | None:
    """A note saying how a 16-bit image was brought to 8 bits; None for 8-bit images."""
    if frame.stretch is None:
        return None
    low, high = frame.stretch
    return f"16-bit image stretched to 8 bits (values {low}..{high} → 0..255)"


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
    frames = {"vis": read_frame(pair.vis_path), "ir": read_frame(pair.ir_path)}
    for name, frame in frames.items():
        note = stretch_note(frame)
        if note:
            notes.append(f"{name}: {note}")
    vis, ir = frames["vis"].rgb(), frames["ir"].rgb()
    if vis.ndim == 2:
        notes.append("vis: gray image, fused as gray")
    if ir.ndim == 3:
        ir = rgb2gray(ir)
        notes.append("ir: colour infrared image converted to gray (rgb2gray)")
    if vis.shape[:2] != ir.shape[:2]:
        raise DataError(f"{pair.name}: sizes differ, vis/{pair.vis_path.name} is {vis.shape[1]}×{vis.shape[0]} "
                        f"but ir/{pair.ir_path.name} is {ir.shape[1]}×{ir.shape[0]} (W×H); pairs must be aligned")
    return LoadedPair(pair.name, vis, ir, notes)


__all__ = ["IMAGE_SUFFIXES", "LoadedPair", "Pair", "Skipped", "find_pairs", "load_pair", "read_frame", "read_image",
           "stretch_note"]
