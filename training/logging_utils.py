"""Run bookkeeping: atomic resume state, SIGINT/SIGTERM handling, TensorBoard, tqdm and the JSON summary."""

from __future__ import annotations

import importlib.util
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import torch

LOGGER = logging.getLogger(__name__)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename: a kill mid-save leaves the previous state intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none. weights_only: never unpickles arbitrary code."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


class StopFlag:
    """Set by SIGINT/SIGTERM; the training loop saves its state at the next step and exits.

    A second signal while the first is being handled exits at once (the last saved state stays valid).
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        LOGGER.warning("received signal %d: saving a checkpoint and stopping", signum)
        self.signal = signum

    def __bool__(self) -> bool:
        return self.signal is not None


class RunLogger:
    """TensorBoard scalars and image grids plus a JSON summary; a no-op on ranks other than 0."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self.out_dir = out_dir
        self.enabled = enabled
        self.writer = None
        self.summary: dict[str, Any] = {}
        self.summary_path = out_dir / "summary.json"
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            out_dir.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(str(out_dir / "tb"))
            if self.summary_path.is_file():
                self.summary = json.loads(self.summary_path.read_text())
        self.started = time.time()

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def images(self, tag: str, rows: list[torch.Tensor], step: int) -> None:
        """One grid: each row a B×1×H×W batch laid side by side, rows stacked (same H, W everywhere).

        Skipped where Pillow (which TensorBoard encodes images with) is not installed, e.g. on the GPU machine.
        """
        if self.writer is not None and rows and importlib.util.find_spec("PIL") is not None:
            grid = torch.cat([torch.cat(list(row[:, 0]), dim=-1) for row in rows], dim=-2)
            self.writer.add_image(tag, grid.clamp(0, 1)[None], step)

    def update_summary(self, stage: str, values: dict[str, Any]) -> None:
        """Merge `values` into summary.json under `stage` (written atomically)."""
        if not self.enabled:
            return
        self.summary.setdefault(stage, {}).update(values)
        self.summary["wall_time_s_this_process"] = round(time.time() - self.started, 1)
        tmp = self.summary_path.with_name("summary.json.tmp")
        tmp.write_text(json.dumps(self.summary, indent=2, default=float))
        tmp.replace(self.summary_path)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
