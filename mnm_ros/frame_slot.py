"""A one-slot newest-frame buffer between the subscription callback and the inference thread.

The callback `put`s each frame and returns at once; the worker `take`s the newest. A frame still
waiting when a newer one arrives is replaced and counted as dropped: nothing queues, so latency
stays bounded by one inference however fast frames come in.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameSlot(Generic[T]):
    """Thread-safe single-item buffer where the newest item wins."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.accepted = 0
        """Items put since creation."""
        self.dropped = 0
        """Items replaced before the worker took them."""

    def put(self, item: T) -> bool:
        """Offer the newest item; returns True when it replaced (dropped) a waiting one."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self.accepted += 1
            self.dropped += int(replaced)
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The waiting item, waiting up to `timeout` s for one; None on timeout or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the worker and make every later `take` return None; a waiting item is discarded."""
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
