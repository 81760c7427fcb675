"""The slow path in the background: newest frame → I_pir⁰ → prompt → text feature → (γ, β).

`ModulationRefresher` is the ModulationSource the Fuser reads. `observe` only stores a reference to the
newest frame; a daemon thread wakes every `refresh_period_s`, and when a new frame has arrived it
takes a thumbnail of it, computes I_pir⁰ with its own copy of the model, describes the scene, encodes the
prompt in a worker thread (abandoned after `timeout_s`), applies Φγ/Φβ and publishes a new Modulation by
replacing one reference. The fast path never waits: `current()` is a plain attribute read.

Both threads run at a lower OS priority (`BACKGROUND_NICENESS`) and compute their torch ops in
themselves, single-threaded (`run_in_background`), so on a small CPU the fast path keeps the cores it
needs while a refresh runs.

A failed refresh (the encoder raised, hung, or gave NaN/inf, or the heads did) leaves the last good
modulation in place, is logged and counted in `stats()`, and the next try waits with exponential
back-off (the period doubled per consecutive failure, at most `MAX_BACKOFF_FACTOR` periods).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from typing import Any

import numpy as np
import torch

from mnm_core.config import TextConfig
from mnm_core.errors import TextEncoderError
from mnm_core.model import VgiiModel
from mnm_core.modulation import Modulation, ModulationSource
from mnm_core.text.base import TextEncoder
from mnm_core.text.frame_prompt import PROMPT_SIDE, describe_frame

LOGGER = logging.getLogger(__name__)

MAX_BACKOFF_FACTOR = 32
WARM_UP_TIMEOUT_S = 10.0
"""`start` waits at most this long for the refresh thread's warm-up."""
STOP_JOIN_S = 2.0
BACKGROUND_NICENESS = 10
"""Nice value of the slow-path threads (which run their torch ops themselves: `run_in_background`): on a
small CPU the refresh (I_pir⁰ + text encoder) would otherwise take cores from the fast path at every
period; at nice 10 the scheduler gives a busy fast-path thread about nine times its share."""


def run_in_background(niceness: int = BACKGROUND_NICENESS) -> None:
    """Make the calling thread a background one: a lower scheduling priority (Linux keeps a nice value per
    thread) and torch ops computed in this thread alone (torch's thread count is per thread).

    The second matters as much as the first: torch's worker pool is shared by the process and may have
    been started by a thread at normal priority (model loading, a warm-up), so a slow path that handed its
    ops to the pool would compete with the fast path at full priority on every core. Measured on the
    2-core machine: with the pool, a MiniLM refresh every second raised the node's p99 latency by 60 %.
    Never raises: elsewhere, or without permission, the priority stays as it is.
    """
    torch.set_num_threads(1)
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(niceness, os.getpriority(os.PRIO_PROCESS, tid)))
    except (AttributeError, OSError) as exc:
        LOGGER.debug("cannot lower the slow path's priority: %s", exc)


class _StoppedError(Exception):
    """stop() was called while waiting for the encoder."""


class ModulationRefresher(ModulationSource):
    """Background (γ, β) refresh from text; starts with the identity modulation."""

    def __init__(self, model: VgiiModel, encoder: TextEncoder, config: TextConfig) -> None:
        super().__init__(model.config.n_atoms)
        # A private fp32 CPU copy: the fast path's model may live on another device, in another precision.
        self._model = copy.deepcopy(model).to("cpu", torch.float32).eval()
        self._encoder = encoder
        self._config = config
        self._latest: np.ndarray | None = None
        self._described: np.ndarray | None = None
        self._encoding: threading.Thread | None = None
        self._stop = threading.Event()
        self._warmed = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshes = 0
        self._failures = 0
        self._timeouts = 0
        self._non_finite = 0
        self._consecutive_failures = 0
        self._last_error = ""

    def observe(self, rgb: np.ndarray, y: np.ndarray) -> None:
        """Keep a reference to the newest frame; returns at once. The slow path derives Y from `rgb`."""
        self._latest = rgb

    def start(self) -> None:
        """Start the refresh thread and return once it has warmed up (at most WARM_UP_TIMEOUT_S)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._warmed.clear()
        self._thread = threading.Thread(target=self._run, name="mnm-text-refresh", daemon=True)
        self._thread.start()
        if not self._warmed.wait(WARM_UP_TIMEOUT_S):
            LOGGER.warning("the text refresh did not warm up within %.0f s; frames may meet its first-call costs",
                           WARM_UP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the refresh thread; an encoder call still running is abandoned (its thread is a daemon)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)
            if self._thread.is_alive():
                LOGGER.warning("text refresh thread did not stop within %.1f s", STOP_JOIN_S)
            self._thread = None

    def stats(self) -> dict[str, float | int | str]:
        current = self.current()
        return {
            "encoder": self._encoder.fingerprint,
            "refreshes": self._refreshes,
            "failures": self._failures,
            "timeouts": self._timeouts,
            "non_finite": self._non_finite,
            "consecutive_failures": self._consecutive_failures,
            "last_error": self._last_error,
            "modulation_source": current.source,
            "modulation_age_s": round(current.age_s(), 3),
            "prompt": current.prompt,
        }

    def refresh(self) -> bool:
        """One slow-path pass on the newest frame, unless it was already described; False when it failed.

        A failed frame stays undescribed, so the next pass retries it. The background thread calls
        this; tests and tools may call it directly (not concurrently).
        """
        frame = self._latest
        if frame is None or frame is self._described:
            return True
        try:
            prompt = describe_frame(self._model, frame, self._config.prompt_style)
            feature = self._encode(prompt)
            modulation = self._modulate(feature, prompt)
        except _StoppedError:
            return True
        except TextEncoderError as exc:
            self._fail(exc)
            return False
        self._current = modulation  # the one atomic publish the fast path sees
        self._described = frame
        self._refreshes += 1
        self._consecutive_failures = 0
        LOGGER.debug("new modulation from %r", prompt)
        return True

    def _run(self) -> None:
        run_in_background()
        self._warm_up()
        self._warmed.set()
        period = self._config.refresh_period_s
        delay = 0.0
        while not self._stop.wait(delay):
            if self._latest is None:  # no frame yet: look again soon, so the first result comes early
                delay = min(period, 0.05)
                continue
            try:
                ok = self.refresh()
            except Exception as exc:  # never let the slow path die silently; the fast path keeps going
                LOGGER.exception("text refresh failed unexpectedly")
                self._fail(exc)
                ok = False
            backoff = min(2.0 ** self._consecutive_failures, MAX_BACKOFF_FACTOR)
            delay = period if ok else period * backoff

    def _warm_up(self) -> None:
        """Describe a gray frame once, in the refresh thread, before any frame arrives: the first I_pir⁰'s
        one-time costs (torch's kernel set-up: 315 ms against 110 later, measured at 256 pixels) would
        otherwise fall on the first frames the fast path runs (the first frame of a live replay took
        400 ms instead of 60, and the next two were dropped). The encoder is not called: its first call
        costs little more than the others (41 vs 25 ms), and a hung encoder must not hold up the start."""
        describe_frame(self._model, np.full((PROMPT_SIDE, PROMPT_SIDE, 3), 0.5, np.float32))

    def _encode(self, prompt: str) -> np.ndarray:
        """The encoder call in a worker thread, abandoned after timeout_s; never two calls at once."""
        if self._encoding is not None and self._encoding.is_alive():
            raise TextEncoderError("the previous encoder call is still running (hung); not starting another")
        result: dict[str, Any] = {}

        def call() -> None:
            run_in_background()
            try:
                result["feature"] = self._encoder.encode([prompt])
            except Exception as exc:  # reported by the caller, which owns the counters
                result["error"] = exc

        self._encoding = threading.Thread(target=call, name="mnm-text-encode", daemon=True)
        self._encoding.start()
        deadline = time.monotonic() + self._config.timeout_s
        while self._encoding.is_alive() and time.monotonic() < deadline:
            if self._stop.is_set():
                raise _StoppedError
            self._encoding.join(min(0.05, max(0.0, deadline - time.monotonic())))
        if self._encoding.is_alive():
            self._timeouts += 1
            raise TextEncoderError(f"{self._encoder.name} encoder did not answer within "
                                   f"{self._config.timeout_s:g} s (text.timeout_s); abandoned")
        self._encoding = None
        if "error" in result:
            error = result["error"]
            raise TextEncoderError(f"{self._encoder.name} encoder failed: {error}") from error
        feature = np.asarray(result["feature"], dtype=np.float32)
        expected = (1, self._model.config.text_dim)
        if feature.shape != expected:
            raise TextEncoderError(f"{self._encoder.name} encoder returned shape {feature.shape}, "
                                   f"expected {expected}")
        if not np.isfinite(feature).all():
            self._non_finite += 1
            raise TextEncoderError(f"{self._encoder.name} encoder returned NaN or inf")
        return feature

    @torch.no_grad()
    def _modulate(self, feature: np.ndarray, prompt: str) -> Modulation:
        gamma, beta = self._model.modulation(torch.from_numpy(feature))
        gamma, beta = gamma.numpy().astype(np.float32), beta.numpy().astype(np.float32)
        if not (np.isfinite(gamma).all() and np.isfinite(beta).all()):
            self._non_finite += 1
            raise TextEncoderError("the modulation heads gave NaN or inf for this feature")
        return Modulation(gamma, beta, source=self._encoder.name, stamp=time.monotonic(), prompt=prompt)

    def _fail(self, exc: BaseException) -> None:
        self._failures += 1
        self._consecutive_failures += 1
        self._last_error = str(exc)
        LOGGER.warning("text refresh failed (%d in a row; keeping the modulation from %.1f s ago): %s",
                       self._consecutive_failures, self.current().age_s(), exc)


__all__ = ["ModulationRefresher"]
