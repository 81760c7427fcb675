"""Reading what is left of a damaged bag: a truncated .db3 or an .mcap file without its footer.

A recorder killed mid-write leaves a bag that `rosbags` refuses to open. These readers recover the
messages stored before the damage, in file order:
- sqlite3: the file is copied and zero-padded to the page count its header declares (a header that
  declares more than MAX_PADDING_BYTES beyond the file is not believed: the copy keeps the pages the
  file holds), then the `messages` table is read in row order until SQLite reports the first broken page;
- mcap: the data section is scanned from the start (rosbags' own record scanner, pinned rosbags
  0.11.9) until the first incomplete record.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnm_core.errors import DataError

LOGGER = logging.getLogger(__name__)

MAX_PADDING_BYTES = 1 << 30
"""Most zero bytes added to a truncated .db3 copy (a recorder killed mid-write loses its last pages, not
terabytes; a header claiming 0xFFFFFFFF pages would otherwise ask for a 16 TB file)."""

Message = tuple[str, str, int, bytes]
"""(topic, message type, bag time (ns), CDR bytes)."""


class SalvageSource:
    """The readable part of one damaged storage file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.topics: dict[str, tuple[str, int]] = {}
        """topic → (message type, -1: the count is unknown in a damaged file)."""
        self.damage: str | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if path.suffix == ".db3":
            self._open_sqlite3()
        elif path.suffix == ".mcap":
            self._open_mcap()
        else:
            raise DataError(f"cannot recover {path}: not a .db3 or .mcap file")

    # sqlite3 -----------------------------------------------------------------------------------
    def _open_sqlite3(self) -> None:
        header = self.path.open("rb").read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
            raise DataError(f"{self.path} is not an SQLite database (bad header); nothing can be recovered")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        page_count = int.from_bytes(header[28:32], "big")
        self._tmpdir = tempfile.TemporaryDirectory(prefix="mnm-salvage-")
        copy = Path(self._tmpdir.name) / self.path.name
        shutil.copyfile(self.path, copy)
        size = copy.stat().st_size
        if page_size * page_count - size > MAX_PADDING_BYTES:
            LOGGER.warning("%s: its header claims %d pages of %d bytes (%.3g GB), far beyond the file (%d bytes); "
                           "reading the pages the file holds", self.path, page_count, page_size,
                           page_size * page_count / 1e9, size)
            page_count = -(-size // page_size)
        try:
            with copy.open("r+b") as handle:
                handle.seek(28)
                handle.write(page_count.to_bytes(4, "big"))  # the copy's header agrees with its length
                handle.truncate(max(page_size * page_count, size))
        except OSError as exc:
            self.close()
            raise DataError(f"cannot pad a copy of {self.path} to the {page_count} pages its header declares "
                            f"({exc.strerror or exc})") from exc
        try:
            self._db = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
            rows = self._db.execute("SELECT id, name, type FROM topics").fetchall()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise DataError(f"{self.path}: even the topic table is unreadable ({exc}); nothing can be recovered") \
                from exc
        self._topic_ids = {row[0]: (row[1], row[2]) for row in rows}
        self.topics = {name: (msgtype, -1) for name, msgtype in self._topic_ids.values()}

    def _sqlite3_messages(self, topics: set[str]) -> Iterator[Message]:
        try:
            for topic_id, timestamp, data in self._db.execute("SELECT topic_id, timestamp, data FROM messages"):
                name, msgtype = self._topic_ids.get(topic_id, ("", ""))
                if name in topics:
                    yield name, msgtype, int(timestamp), bytes(data)
        except sqlite3.DatabaseError as exc:
            self.damage = f"sqlite3 storage is broken beyond this point ({exc})"

    # mcap --------------------------------------------------------------------------------------
    def _open_mcap(self) -> None:
        from rosbags.rosbag2.storage_mcap import McapReader, read_sized

        self._mcap = McapReader(self.path)
        bio = self._mcap.bio = self.path.open("rb")
        if bio.read(8) != b"\x89MCAP0\r\n" or bio.read(1) != b"\x01":
            self.close()
            raise DataError(f"{self.path} is not an MCAP file (bad magic); nothing can be recovered")
        try:
            read_sized(bio)  # the header record
        except Exception as exc:
            self.close()
            raise DataError(f"{self.path}: the MCAP header is incomplete; nothing can be recovered") from exc
        self._mcap.data_start = bio.tell()
        self._mcap.data_end = self.path.stat().st_size
        try:
            self._mcap.meta_scan()  # fills schemas/channels/connections as it goes
        except Exception as exc:  # the scan stops at the damage; what it found before stays
            LOGGER.debug("meta scan of %s stopped: %s", self.path, exc)
        self.topics = {c.topic: (c.msgtype, -1) for c in self._mcap.connections}

    def _mcap_messages(self, topics: set[str]) -> Iterator[Message]:
        connections = [c for c in self._mcap.connections if c.topic in topics]
        try:
            for connection, timestamp, data in self._mcap.messages_scan(connections):
                yield connection.topic, connection.msgtype, int(timestamp), bytes(data)
        except Exception as exc:  # ReaderError, struct or decompression errors at the truncation
            self.damage = f"mcap data ends in an incomplete record ({type(exc).__name__}: {exc})"

    # -------------------------------------------------------------------------------------------
    def messages(self, topics: set[str]) -> Iterator[Message]:
        """Messages of `topics` in file order, up to the damage (then `damage` is set)."""
        self.damage = None
        if self.path.suffix == ".db3":
            yield from self._sqlite3_messages(topics)
        else:
            yield from self._mcap_messages(topics)

    def close(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
            self._db = None
        if getattr(self, "_mcap", None) is not None and self._mcap.bio is not None:
            self._mcap.bio.close()
            self._mcap.bio = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


def storage_file(path: Path) -> Path | None:
    """The single .db3/.mcap file of a bag path (a bag folder or the file itself), if there is one."""
    if path.is_file():
        return path
    files = sorted([*path.glob("*.db3"), *path.glob("*.mcap")])
    return files[0] if len(files) == 1 else None


__all__ = ["SalvageSource", "storage_file"]
