"""Building ROS 2 bags from a folder of IR–visible pairs or from a video file.

Folder pairs are read with `mnm_core.pairs` — the loader of `mnm eval` — so a bag of raw Image
messages holds exactly the pixels `mnm eval` scores (visible frames as rgb8/bgr8, or mono8 where the
file is gray; infrared as mono8). `--compressed` stores CompressedImage instead (JPEG is lossy).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from mnm_core.bags.reader import COMPRESSED_TYPE
from mnm_core.bags.writer import ENCODINGS, BagWriter, Storage, compressed_message
from mnm_core.errors import DataError

LOGGER = logging.getLogger(__name__)

VIS_TOPIC = "/camera/image_raw"
IR_TOPIC = "/thermal/image_raw"
VIS_FRAME_ID = "camera"
IR_FRAME_ID = "thermal"


@dataclass
class MadeBag:
    """What `make_bag_from_pairs`/`make_bag_from_video` wrote."""

    path: Path
    counts: dict[str, int]
    """topic → messages written."""
    names: list[str] = field(default_factory=list)
    """Pair names in bag order (folder input)."""
    skipped: list[str] = field(default_factory=list)
    """'name: reason' of each pair left out."""


def _check(fps: float, encoding: str) -> int:
    if not fps > 0:
        raise DataError(f"--fps must be positive, got {fps}")
    if encoding not in ENCODINGS:
        raise DataError(f"unknown encoding {encoding!r}; use one of {list(ENCODINGS)}")
    return round(1e9 / fps)


class _FrameSink:
    """Writes frames as raw Image or as CompressedImage messages."""

    def __init__(self, writer: BagWriter, encoding: str, compressed: bool, fmt: Literal["jpeg", "png"]) -> None:
        self.writer, self.encoding, self.compressed, self.fmt = writer, encoding, compressed, fmt

    def write(self, topic: str, image: np.ndarray, layout: str, stamp: int, frame_id: str) -> None:
        if self.compressed:
            self.writer.add_topic(topic, COMPRESSED_TYPE)
            self.writer.write(topic, stamp, compressed_message(self.writer.types, image, layout, stamp, frame_id,
                                                               fmt=self.fmt))
        else:
            self.writer.write_image(topic, image, layout, stamp, frame_id=frame_id, encoding=self.encoding)


def make_bag_from_pairs(data_dir: str | Path, out: str | Path, storage: Storage = "sqlite3", fps: float = 10.0,
                        encoding: str = "rgb8", compressed: bool = False, compressed_format: Literal["jpeg", "png"]
                        = "jpeg", vis_topic: str = VIS_TOPIC, ir_topic: str = IR_TOPIC, start_ns: int | None = None,
                        progress: bool = True) -> MadeBag:
    """One visible and one thermal message per pair (sorted by name), both stamped start + k/fps.

    Pairs `mnm_core.pairs` cannot load (missing partner, sizes that differ, unreadable file) are
    skipped with a warning, as `mnm eval` skips them. start_ns defaults to now.
    """
    from tqdm import tqdm

    from mnm_core.pairs import find_pairs, load_pair

    period = _check(fps, encoding)
    pairs, skipped_pairs = find_pairs(data_dir)
    skipped = [f"{s.name}: {s.reason}" for s in skipped_pairs]
    if not pairs:
        raise DataError(f"{data_dir}: no image pairs found ({'; '.join(skipped[:5]) or 'vis/ and ir/ are empty'})")
    start = time.time_ns() if start_ns is None else int(start_ns)
    names: list[str] = []
    with BagWriter(out, storage) as writer:
        sink = _FrameSink(writer, encoding, compressed, compressed_format)
        for pair in tqdm(pairs, desc="make-bag", unit="pair", disable=not progress):
            try:
                loaded = load_pair(pair)
            except DataError as exc:
                skipped.append(f"{pair.name}: {exc}")
                continue
            stamp = start + len(names) * period
            sink.write(vis_topic, loaded.vis, "gray" if loaded.vis.ndim == 2 else "rgb", stamp, VIS_FRAME_ID)
            sink.write(ir_topic, loaded.ir, "gray", stamp, IR_FRAME_ID)
            names.append(pair.name)
        counts = dict(writer.counts)
    for reason in skipped:
        LOGGER.warning("skipped %s", reason)
    if not names:
        raise DataError(f"{data_dir}: no pair could be written ({'; '.join(skipped[:5]) or 'no pairs found'})")
    return MadeBag(Path(out), counts, names, skipped)


def make_bag_from_video(video: str | Path, out: str | Path, storage: Storage = "sqlite3", fps: float | None = None,
                        encoding: str = "rgb8", compressed: bool = False,
                        compressed_format: Literal["jpeg", "png"] = "jpeg", vis_topic: str = VIS_TOPIC,
                        max_frames: int | None = None, start_ns: int | None = None, progress: bool = True) -> MadeBag:
    """Every frame of a video (OpenCV) as one visible message, stamped start + k/fps (fps: the video's own)."""
    import cv2
    from tqdm import tqdm

    capture = cv2.VideoCapture(str(video))
    if not Path(video).is_file() or not capture.isOpened():
        raise DataError(f"cannot open video {video} with OpenCV (missing file or unsupported codec)")
    try:
        fps = fps or capture.get(cv2.CAP_PROP_FPS) or 10.0
        period = _check(fps, encoding)
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        total = min(total, max_frames) if total and max_frames else (total or max_frames)
        start = time.time_ns() if start_ns is None else int(start_ns)
        with BagWriter(out, storage) as writer:
            sink = _FrameSink(writer, encoding, compressed, compressed_format)
            with tqdm(total=total, desc="make-bag", unit="frame", disable=not progress) as bar:
                index = 0
                while max_frames is None or index < max_frames:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    sink.write(vis_topic, frame, "bgr" if frame.ndim == 3 else "gray", start + index * period,
                               VIS_FRAME_ID)
                    index += 1
                    bar.update()
            counts = dict(writer.counts)
    finally:
        capture.release()
    if not index:
        raise DataError(f"video {video} has no readable frame")
    return MadeBag(Path(out), counts)


__all__ = ["IR_TOPIC", "VIS_TOPIC", "MadeBag", "make_bag_from_pairs", "make_bag_from_video"]
