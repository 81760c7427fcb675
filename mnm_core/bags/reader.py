"""Reading image topics from ROS 2 bags (sqlite3 and mcap) without a ROS installation.

Messages are deserialised with the `rosbags` typestore of the standard ROS 2 types, so bags written by
`ros2 bag record`, by rosbags or by `mnm make-bag` read the same way. Only `sensor_msgs/msg/Image` and
`sensor_msgs/msg/CompressedImage` topics are decoded, by mnm_core.frames as the node decodes them (same
encodings, 16-bit policy and layout, so a bag gives the pixels the live node sees); a damaged bag is
read up to the damage and `BagReader.damage` says what went wrong and where.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnm_core.errors import DataError
from mnm_core.frames import Frame, FrameError, compressed_to_frame, raw_to_frame

LOGGER = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)


def typestore() -> Any:
    """The rosbags typestore of the standard ROS 2 message types (Humble definitions, valid for later
    distributions: Image and CompressedImage have not changed)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


@dataclass(frozen=True)
class RawMessage:
    """One serialised message as stored in the bag."""

    topic: str
    msgtype: str
    bag_time_ns: int
    """Time the recorder received the message (ns since the epoch)."""
    data: bytes
    """CDR bytes, with the encapsulation header."""


def _storage_file_or_raise(path: Path) -> Path:
    """A bag folder without metadata.yaml (a recorder that was killed): its single storage file."""
    from mnm_core.bags.salvage import storage_file

    file = storage_file(path)
    if file is None:
        raise DataError(f"{path} has no metadata.yaml and not exactly one .db3/.mcap file; it is not a ROS 2 bag")
    LOGGER.warning("%s has no metadata.yaml; reading its storage file %s directly", path, file.name)
    return file


def stamp_ns(stamp: Any) -> int:
    """builtin_interfaces/Time → ns."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class BagReader:
    """A ROS 2 bag (a directory with metadata.yaml, or a bare .db3/.mcap file) opened for reading.

    Use as a context manager. A bag that `rosbags` cannot open (a truncated .db3, an .mcap without its
    footer) is read by `mnm_core.bags.salvage` instead, and `recovered` says why. `messages` stops at the
    first storage error instead of raising; `damage` then says what went wrong and `messages_read` how far
    it got.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"bag {self.path} does not exist")
        self.types = typestore()
        self.damage: str | None = None
        self.recovered: str | None = None
        self.messages_read = 0
        self._reader: Any = None
        self._salvage: Any = None
        try:
            self._open_rosbags()
        except DataError as exc:
            self._open_salvage(exc)

    def _open_rosbags(self) -> None:
        from rosbags.rosbag2 import Reader

        try:
            reader = Reader(self.path if self.path.is_file() or (self.path / "metadata.yaml").exists()
                            else _storage_file_or_raise(self.path))
            reader.open()
        except DataError:
            raise
        except Exception as exc:  # rosbags raises ReaderError/FileNotFoundError; apsw and struct errors leak
            raise DataError(f"cannot open bag {self.path}: {exc}") from exc
        self._reader = reader

    def _open_salvage(self, error: DataError) -> None:
        from mnm_core.bags.salvage import SalvageSource, storage_file

        file = storage_file(self.path)
        if file is None or file.suffix not in (".db3", ".mcap"):
            raise DataError(f"{error} — is it a ROS 2 bag (a folder with metadata.yaml and its .db3/.mcap file, "
                            "or one .db3/.mcap file)?") from error
        try:
            self._salvage = SalvageSource(file)
        except DataError as exc:
            raise DataError(f"{error}; recovery failed too: {exc}") from exc
        self.recovered = str(error)
        LOGGER.warning("%s; reading the part of %s that is intact", error, file)

    @property
    def topics(self) -> dict[str, tuple[str, int]]:
        """topic → (message type, message count from the bag's index; -1 when unknown in a damaged bag)."""
        if self._salvage is not None:
            return dict(self._salvage.topics)
        return {name: (info.msgtype or "(mixed types)", info.msgcount) for name, info in self._reader.topics.items()}

    def describe_topics(self) -> str:
        return ", ".join(f"{name} [{msgtype}, {count if count >= 0 else '?'}]"
                         for name, (msgtype, count) in sorted(self.topics.items())) or "(none)"

    def require_image_topic(self, topic: str) -> str:
        """The message type of `topic`; DataError naming the existing topics when it is absent or not an image."""
        topics = self.topics
        if topic not in topics:
            damaged = f" (the bag is damaged: {self.recovered}; only what precedes the damage is readable)" \
                if self.recovered else ""
            raise DataError(f"topic {topic!r} is not in bag {self.path}; it has: {self.describe_topics()}{damaged}")
        msgtype = topics[topic][0]
        if msgtype not in IMAGE_TYPES:
            raise DataError(f"topic {topic!r} in bag {self.path} carries {msgtype}, not an image type "
                            f"({' or '.join(IMAGE_TYPES)})")
        return msgtype

    def _raw(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        if self._salvage is not None:
            yield from self._salvage.messages(topics)
            self.damage = self._salvage.damage or self.recovered
            return
        connections = [c for c in self._reader.connections if c.topic in topics]
        iterator = self._reader.messages(connections=connections)
        while True:
            try:
                connection, bag_time, data = next(iterator)
            except StopIteration:
                return
            except Exception as exc:  # storage plugins raise ReaderError, apsw, struct and zstd errors
                self.damage = f"{type(exc).__name__}: {exc}"
                return
            yield connection.topic, connection.msgtype, bag_time, data

    def messages(self, topics: Iterable[str]) -> Iterator[RawMessage]:
        """Serialised messages of `topics` in bag order; stops (setting `damage`) at a storage error."""
        self.damage, self.messages_read = None, 0
        for topic, msgtype, bag_time, data in self._raw(set(topics)):
            self.messages_read += 1
            yield RawMessage(topic, msgtype, int(bag_time), bytes(data))
        if self.damage:
            self.damage = f"bag is damaged after {self.messages_read} messages: {self.damage}"
            LOGGER.warning("%s: %s; the rest of the bag is ignored", self.path, self.damage)

    def deserialize(self, message: RawMessage) -> Any:
        """The rosbags message object; DataError for unknown types or corrupt payloads."""
        if message.msgtype not in self.types.types:
            raise DataError(f"message type {message.msgtype} of topic {message.topic} is not a standard ROS 2 type")
        try:
            return self.types.deserialize_cdr(message.data, message.msgtype)
        except Exception as exc:  # rosbags raises struct/index/value errors on a corrupt payload
            raise DataError(f"corrupt {message.msgtype} message on {message.topic} at bag time "
                            f"{message.bag_time_ns} ns: {exc}") from exc

    def decode(self, message: RawMessage) -> Frame:
        """Deserialise and decode an image message (mnm_core.frames); DataError naming the message."""
        msg = self.deserialize(message)
        source = {"stamp_ns": stamp_ns(msg.header.stamp), "frame_id": str(msg.header.frame_id),
                  "topic": message.topic, "bag_time_ns": message.bag_time_ns}
        try:
            if message.msgtype == IMAGE_TYPE:
                return raw_to_frame(msg.data, msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian),
                                    **source)
            if message.msgtype == COMPRESSED_TYPE:
                return compressed_to_frame(msg.data, msg.format, **source)
        except FrameError as exc:
            raise DataError(f"{message.msgtype} on {message.topic} at bag time {message.bag_time_ns} ns: {exc}") \
                from exc
        raise DataError(f"topic {message.topic} carries {message.msgtype}, not an image type")

    def header_stamp(self, message: RawMessage) -> int:
        """header.stamp (ns) of any message with a std_msgs/Header first."""
        return stamp_ns(self.deserialize(message).header.stamp)

    def close(self) -> None:
        if self._reader is not None and self._reader.is_open:
            self._reader.close()
        if self._salvage is not None:
            self._salvage.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["COMPRESSED_TYPE", "IMAGE_TYPE", "IMAGE_TYPES", "BagReader", "Frame", "RawMessage", "stamp_ns", "typestore"]
