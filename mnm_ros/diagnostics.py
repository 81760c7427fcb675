"""Counters of the fusion node, their diagnostic_msgs/DiagnosticArray form, and bounded once-per-kind logging.

The subscription callback and the inference thread update `NodeStats`; a timer turns a `snapshot`
(rates over the period since the previous one, latency percentiles over recent frames) into one
DiagnosticStatus on /diagnostics. `LogOnce` decides which problems are worth a log line, with bounded
memory whatever strings a peer sends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

LATENCY_WINDOW = 200
"""Recent frames the latency percentiles are computed over."""
SLOW_DROP_SHARE = 0.5
"""WARN when more than this share of the frames received in a period were dropped (inference too slow)."""


class LogOnce:
    """Which problems to log: each key once (or again after `period_s`), in bounded memory.

    Keys are cut to `key_chars` characters and at most `capacity` are remembered; once full, every new
    key shares the single key OVERFLOW, so a peer sending endless distinct bad values (20 KB encoding
    strings) costs one more log line, not one per value.
    """

    OVERFLOW = "(further distinct problems)"

    def __init__(self, capacity: int = 64, key_chars: int = 80) -> None:
        self.capacity, self.key_chars = capacity, key_chars
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, period_s: float | None = None) -> str | None:
        """The key to log this problem under (OVERFLOW once full), or None when it was logged already
        (ever, or within `period_s`)."""
        key = key[: self.key_chars]
        now = time.monotonic()
        with self._lock:
            if key not in self._last and len(self._last) >= self.capacity:
                key = self.OVERFLOW
            last = self._last.get(key)
            if last is not None and (period_s is None or now - last < period_s):
                return None
            self._last[key] = now
            return key


class NodeStats:
    """Thread-safe counters: frames received, rejected (by kind), failed (by stage), lost in transport,
    processed, and latencies. (Drops are counted by the frame slot and passed to `snapshot`.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.lost = 0
        self.rejected: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._inference_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last_time = time.monotonic()
        self._last_received = 0
        self._last_processed = 0
        self._last_dropped = 0

    def count_received(self) -> None:
        with self._lock:
            self.received += 1

    def count_rejected(self, kind: str) -> int:
        """Count one rejected frame; returns how many of this kind so far."""
        with self._lock:
            self.rejected[kind] += 1
            return self.rejected[kind]

    def count_failed(self, stage: str) -> int:
        """Count one frame that failed in `stage` (inference, output, publish); returns how many so far."""
        with self._lock:
            self.failed[stage] += 1
            return self.failed[stage]

    def count_lost(self, count: int) -> None:
        """Frames the middleware reports lost before they reached the node (e.g. too large for it)."""
        with self._lock:
            self.lost += count

    def count_processed(self, latency_ms: float, inference_ms: float) -> None:
        """One published frame: receive → publish latency and backend time (ms)."""
        with self._lock:
            self.processed += 1
            self._latency_ms.append(latency_ms)
            self._inference_ms.append(inference_ms)

    def snapshot(self, dropped: int) -> dict[str, float | int]:
        """Totals, rates since the previous snapshot (Hz) and latency percentiles (ms)."""
        with self._lock:
            now = time.monotonic()
            period = max(now - self._last_time, 1e-6)
            latency = np.asarray(self._latency_ms or [np.nan])
            inference = np.asarray(self._inference_ms or [np.nan])
            values: dict[str, float | int] = {
                "input_rate_hz": (self.received - self._last_received) / period,
                "output_rate_hz": (self.processed - self._last_processed) / period,
                "drop_rate_hz": (dropped - self._last_dropped) / period,
                "latency_ms_median": float(np.median(latency)),
                "latency_ms_p99": float(np.percentile(latency, 99)),
                "latency_ms_last": float(latency[-1]),
                "inference_ms_median": float(np.median(inference)),
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_dropped": dropped,
                "frames_rejected": sum(self.rejected.values()),
                "frames_failed": sum(self.failed.values()),
                "frames_lost_in_transport": self.lost,
            }
            self._last_time, self._last_received, self._last_processed = now, self.received, self.processed
            self._last_dropped = dropped
            return values


def problems(values: dict[str, float | int]) -> list[str]:
    """Why the node is not healthy, from a `snapshot` (empty when it is): each reason says what to look at."""
    reasons = []
    if values["input_rate_hz"] > 0 and values["drop_rate_hz"] > SLOW_DROP_SHARE * values["input_rate_hz"]:
        reasons.append(f"inference slower than the camera: {values['output_rate_hz']:.1f} Hz out of "
                       f"{values['input_rate_hz']:.1f} Hz in (inference {values['inference_ms_median']:.0f} ms per "
                       "frame); the newest frame wins, the others are dropped")
    if values["frames_rejected"] or values["frames_failed"]:
        reasons.append(f"{values['frames_rejected']} frames rejected, {values['frames_failed']} failed (see the log)")
    if values["frames_lost_in_transport"]:
        reasons.append(f"{values['frames_lost_in_transport']} frames lost in transport before reaching the node "
                       "(larger than the middleware carries? see docs/ros.md)")
    return reasons


def build_diagnostics(name: str, stamp, values: dict[str, float | int], info: dict[str, str]):
    """One DiagnosticArray with a single status: WARN with the reasons when there are `problems`, else OK."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus()
    status.name = name
    status.hardware_id = info.get("backend", "")
    reasons = problems(values)
    status.level = DiagnosticStatus.WARN if reasons else DiagnosticStatus.OK
    status.message = "; ".join([f"{values['output_rate_hz']:.1f} Hz out, {values['frames_dropped']} dropped",
                                *reasons])
    items = [(k, f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in values.items()]
    status.values = [KeyValue(key=k, value=v) for k, v in items + sorted(info.items())]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def diagnostics_values(array) -> dict[str, str]:
    """Key → value of the first status of a DiagnosticArray (for clients and tests)."""
    return {kv.key: kv.value for kv in array.status[0].values} if array.status else {}
