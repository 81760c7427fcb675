"""Counters of the fusion node and their diagnostic_msgs/DiagnosticArray form.

The subscription callback and the inference thread update `NodeStats`; a timer turns a `snapshot`
(rates over the period since the previous one, latency percentiles over recent frames) into one
DiagnosticStatus on /diagnostics.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

LATENCY_WINDOW = 200
"""Recent frames the latency percentiles are computed over."""


class NodeStats:
    """Thread-safe counters: frames received, rejected (by kind), dropped, processed, latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.failed = 0
        self.rejected: Counter[str] = Counter()
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._inference_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last_time = time.monotonic()
        self._last_received = 0
        self._last_processed = 0

    def count_received(self) -> None:
        with self._lock:
            self.received += 1

    def count_rejected(self, kind: str) -> int:
        """Count one rejected frame; returns how many of this kind so far."""
        with self._lock:
            self.rejected[kind] += 1
            return self.rejected[kind]

    def count_failed(self) -> None:
        with self._lock:
            self.failed += 1

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
                "latency_ms_median": float(np.median(latency)),
                "latency_ms_p99": float(np.percentile(latency, 99)),
                "latency_ms_last": float(latency[-1]),
                "inference_ms_median": float(np.median(inference)),
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_dropped": dropped,
                "frames_rejected": sum(self.rejected.values()),
                "frames_failed": self.failed,
            }
            self._last_time, self._last_received, self._last_processed = now, self.received, self.processed
            return values


def build_diagnostics(name: str, stamp, values: dict[str, float | int], info: dict[str, str]):
    """One DiagnosticArray with a single status: WARN when frames were rejected or failed, else OK."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus()
    status.name = name
    status.hardware_id = info.get("backend", "")
    problems = int(values["frames_rejected"]) + int(values["frames_failed"])
    status.level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
    status.message = (f"{values['output_rate_hz']:.1f} Hz out, {values['frames_dropped']} dropped"
                      + (f", {problems} rejected or failed" if problems else ""))
    items = [(k, f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in values.items()]
    status.values = [KeyValue(key=k, value=v) for k, v in items + sorted(info.items())]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def diagnostics_values(array) -> dict[str, str]:
    """Key → value of the first status of a DiagnosticArray (for clients and tests)."""
    return {kv.key: kv.value for kv in array.status[0].values} if array.status else {}
