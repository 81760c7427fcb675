"""Writing image messages into ROS 2 bags (sqlite3 or mcap) with the standard message definitions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mnm_core.bags.reader import COMPRESSED_TYPE, IMAGE_TYPE, typestore
from mnm_core.errors import DataError

LOGGER = logging.getLogger(__name__)

Storage = Literal["sqlite3", "mcap"]
STORAGES: tuple[str, ...] = ("sqlite3", "mcap")
ENCODINGS: tuple[str, ...] = ("rgb8", "bgr8")
BAG_VERSION = 8
"""rosbag2 metadata version written (8 = Iron and later; the oldest rosbags can write)."""


def _header(types: Any, stamp_ns: int, frame_id: str) -> Any:
    time_cls = types.types["builtin_interfaces/msg/Time"]
    header_cls = types.types["std_msgs/msg/Header"]
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return header_cls(stamp=time_cls(sec=sec, nanosec=nanosec), frame_id=frame_id)


def _convert(image: np.ndarray, layout: str, encoding: str | None) -> tuple[np.ndarray, str]:
    """The array and encoding to store: gray → mono8; colour in `encoding` (default: its own layout)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise DataError(f"an image to store must be uint8 H×W or H×W×3, got {image.dtype} {image.shape}")
    if image.ndim == 2 or layout == "gray":
        return (image if image.ndim == 2 else image[:, :, 0]), "mono8"
    encoding = encoding or f"{layout}8"
    if encoding not in ENCODINGS:
        raise DataError(f"unsupported colour encoding {encoding!r}; use one of {list(ENCODINGS)}")
    return (image[:, :, ::-1] if encoding[:3] != layout else image), encoding


def image_message(types: Any, image: np.ndarray, layout: str, stamp_ns: int, frame_id: str = "",
                  encoding: str | None = None) -> bytes:
    """CDR bytes of a sensor_msgs/Image holding `image` (raw: the pixels round-trip exactly)."""
    pixels, encoding = _convert(image, layout, encoding)
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    msg = types.types[IMAGE_TYPE](
        header=_header(types, stamp_ns, frame_id), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=width * (1 if pixels.ndim == 2 else 3), data=pixels.reshape(-1))
    return bytes(types.serialize_cdr(msg, IMAGE_TYPE))


def compressed_message(types: Any, image: np.ndarray, layout: str, stamp_ns: int, frame_id: str = "",
                       fmt: Literal["jpeg", "png"] = "jpeg", quality: int = 95) -> bytes:
    """CDR bytes of a sensor_msgs/CompressedImage (JPEG is lossy; PNG keeps the pixels)."""
    import cv2

    pixels, _ = _convert(image, layout, "bgr8" if image.ndim == 3 and layout != "gray" else None)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buffer = cv2.imencode(f".{'jpg' if fmt == 'jpeg' else 'png'}", pixels, params)
    if not ok:
        raise DataError(f"OpenCV could not encode a {pixels.shape} image as {fmt}")
    msg = types.types[COMPRESSED_TYPE](header=_header(types, stamp_ns, frame_id), format=fmt,
                                       data=buffer.reshape(-1).astype(np.uint8))
    return bytes(types.serialize_cdr(msg, COMPRESSED_TYPE))


class BagWriter:
    """A new ROS 2 bag; use as a context manager. On an error the bag is still closed, so everything
    written up to it stays readable."""

    def __init__(self, path: str | Path, storage: Storage = "sqlite3") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        if storage not in STORAGES:
            raise DataError(f"unknown bag storage {storage!r}; use one of {list(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise DataError(f"{self.path} exists already; choose a new bag path or remove it")
        self.types = typestore()
        plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
        try:
            self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise DataError(f"cannot create bag {self.path}: {exc}") from exc
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Register `topic` once; its definition comes from the standard typestore."""
        if topic in self._connections:
            return
        if msgtype not in self.types.types:
            raise DataError(f"cannot write {msgtype} on {topic}: not a standard ROS 2 message type")
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.types)
        self.counts[topic] = 0

    def write(self, topic: str, bag_time_ns: int, data: bytes) -> None:
        """Write serialised bytes on a registered topic."""
        self._writer.write(self._connections[topic], int(bag_time_ns), data)
        self.counts[topic] += 1

    def write_image(self, topic: str, image: np.ndarray, layout: str, stamp_ns: int, bag_time_ns: int | None = None,
                    frame_id: str = "", encoding: str | None = None) -> None:
        """Write a raw sensor_msgs/Image; the bag time defaults to the header stamp."""
        self.add_topic(topic, IMAGE_TYPE)
        data = image_message(self.types, image, layout, stamp_ns, frame_id, encoding)
        self.write(topic, stamp_ns if bag_time_ns is None else bag_time_ns, data)

    def close(self) -> None:
        if self._writer.storage is not None:
            self._writer.close()
            LOGGER.info("wrote bag %s (%s)", self.path, ", ".join(f"{t}: {n}" for t, n in self.counts.items()))

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["ENCODINGS", "STORAGES", "BagWriter", "Storage", "compressed_message", "image_message"]
