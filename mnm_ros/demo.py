"""The demo: the fusion node on the embedded default model, fed sample frames over ROS 2 (`mnm demo`).

Starts `fuse_node` in its own process (isolated: a random ROS_DOMAIN_ID unless one is given, localhost
discovery, the large-data Fast DDS profile), plays frames cut from an image matplotlib ships into
its input topic at a modest rate, and writes what comes back: OUT/fused_NNN.png, OUT/pseudo_ir_NNN.png,
OUT/input_NNN.png, OUT/contact_sheet.png, OUT/summary.json (frames sent, received, dropped, latency)
and OUT/node.log. Falls back to the torch backend and to no text encoder, with a log line, when the
requested ones cannot start.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

import numpy as np

from mnm_core.config import PipelineConfig, TextConfig
from mnm_core.errors import CheckpointError, ConfigError

LOGGER = logging.getLogger(__name__)
NAMESPACE = "/mnm"
START_TIMEOUT_S = 180.0
"""Model load, ONNX export and text-encoder load on a slow machine."""


def sample_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """`count` RGB frames (H×W×3 uint8): a slow pan and zoom over matplotlib's sample photograph."""
    import cv2
    import matplotlib

    from mnm_core.errors import DataError

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"cannot read the sample image {path} (shipped with matplotlib)")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    full_h, full_w = image.shape[:2]
    frames = []
    for i in range(count):
        t = i / max(count - 1, 1)
        scale = 1.0 - 0.35 * t  # zoom in while panning
        crop_w = min(full_w, int(full_h * scale * width / height))
        crop_h = int(crop_w * height / width)
        x0 = min(max(int((full_w - crop_w) * (0.5 + 0.4 * np.sin(2 * np.pi * t))), 0), full_w - crop_w)
        y0 = int((full_h - crop_h) * 0.3 * t)
        crop = image[y0:y0 + crop_h, x0:x0 + crop_w]
        frames.append(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))
    return frames


def contact_sheet(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], max_rows: int = 6) -> np.ndarray:
    """Rows of input | pseudo-IR | fused (RGB uint8), labelled, as one RGB image."""
    import cv2

    picked = rows if len(rows) <= max_rows else [rows[i] for i in np.linspace(0, len(rows) - 1, max_rows).astype(int)]
    lines = []
    for frame, ir, fused in picked:
        tiles = [frame, np.repeat(ir[:, :, None], 3, axis=2), fused]
        lines.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], axis=1))
    sheet = np.concatenate(lines, axis=0)
    header = np.full((24, sheet.shape[1], 3), 255, np.uint8)
    tile_w = sheet.shape[1] // 3
    for i, label in enumerate(("visible input", "pseudo-IR", "fused")):
        cv2.putText(header, label, (i * tile_w + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, sheet], axis=0)


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def _number(text: str | None) -> float | None:
    """A diagnostics value as a JSON-safe number (None for missing or NaN)."""
    value = float(text) if text else float("nan")
    return None if np.isnan(value) else round(value, 1)


def _start(client, params: dict, env: dict, log_path: Path):
    """Start the node, falling back to torch / no text encoder when those fail; returns (process, params)."""
    from mnm_core.errors import MnmError
    from mnm_ros.client import start_node, stop_node
    from mnm_ros.fuse_node import EXIT_BACKEND, EXIT_TEXT

    while True:
        LOGGER.info("starting fuse_node (%s backend, %s text encoder)", params["pipeline.backend"],
                    params["text.encoder"])
        process = start_node(NAMESPACE, params, env, log_path)
        if client.wait_ready(START_TIMEOUT_S, process):
            return process, params
        code = stop_node(process)
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-5:])
        if code == EXIT_BACKEND and params["pipeline.backend"] != "torch":
            LOGGER.warning("backend %s is not available (%s); falling back to torch", params["pipeline.backend"],
                           tail.splitlines()[-1] if tail else "see node.log")
            params = {**params, "pipeline.backend": "torch"}
        elif code == EXIT_TEXT and params["text.encoder"] != "none":
            LOGGER.warning("text encoder %s failed (%s); falling back to none (identity modulation)",
                           params["text.encoder"], tail.splitlines()[-1] if tail else "see node.log")
            params = {**params, "text.encoder": "none"}
        else:
            raise MnmError(f"fuse_node did not start (exit code {code}); last lines of {log_path}:\n{tail}")


def run_demo(out: str | Path, checkpoint: str = "", backend: str = PipelineConfig().backend,
             text_encoder: str = TextConfig().encoder, frames: int = 8, rate: float = 0.5,
             size: tuple[int, int] = (256, 320), domain_id: int | None = None) -> dict[str, object]:
    """Run the demo (see the module docstring); returns the summary also written to out/summary.json.

    size: (height, width) of the frames; rate: frames per second; domain_id: ROS_DOMAIN_ID (None = random).
    ConfigError for bad settings, CheckpointError without a model, MnmError when the node does not start.
    """
    import cv2
    from tqdm import tqdm

    from mnm_core.machine import embedded_checkpoint

    height, width = size
    if frames < 1 or rate <= 0 or width < 8 or height < 8:
        raise ConfigError("frames must be ≥ 1, rate > 0 and the size at least 8x8")
    PipelineConfig(checkpoint=checkpoint, backend=backend)  # the node's own checks, before it starts
    TextConfig(encoder=text_encoder)
    embedded = embedded_checkpoint("auto", "cpu")
    if not checkpoint and not embedded.is_file():
        raise CheckpointError(
            f"the embedded default model {embedded} is not there yet (it is shipped once "
            "trained); run the demo with --checkpoint PATH on a checkpoint of your own")

    from mnm_ros.client import FusionClient, stop_node
    from mnm_ros.conversions import array_to_image, image_to_array
    from mnm_ros.qos import large_data_environment

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    domain = domain_id if domain_id is not None else random.randint(1, 100)
    os.environ.update(large_data_environment())
    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    sent = sample_frames(frames, width, height)
    params = {"pipeline.checkpoint": checkpoint, "pipeline.backend": backend, "text.encoder": text_encoder,
              "diagnostics_period_s": 0.5}
    client = FusionClient(NAMESPACE, name="mnm_demo_player")
    process = None
    try:
        process, params = _start(client, params, dict(os.environ), out / "node.log")
        started = time.monotonic()
        stamps = []
        for frame in tqdm(sent, desc="sending frames", unit="frame"):
            msg = array_to_image(frame, "rgb8")
            msg.header.frame_id = "demo_camera"
            stamps.append(client.send(msg))
            time.sleep(1.0 / rate)

        def settled() -> bool:
            dropped = int(client.latest_diagnostics().get("frames_dropped", 0))
            return len(client.complete()) + dropped >= len(stamps)

        client.wait_for(settled, timeout=max(30.0, 20.0 / rate))
        time.sleep(1.0)  # one more diagnostics period
        diagnostics = client.latest_diagnostics()
        elapsed = time.monotonic() - started
    finally:
        client.close()
        if process is not None:
            stop_node(process)

    rows, latencies = [], []
    for index, stamp in enumerate(stamps):
        result = client.results[stamp]
        if not result.complete:
            continue
        ir, fused = image_to_array(result.pseudo_ir), image_to_array(result.fused)
        cv2.imwrite(str(out / f"input_{index:03d}.png"), cv2.cvtColor(sent[index], cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / f"pseudo_ir_{index:03d}.png"), ir)
        cv2.imwrite(str(out / f"fused_{index:03d}.png"), cv2.cvtColor(fused, cv2.COLOR_RGB2BGR))
        rows.append((sent[index], ir, fused))
        latencies.append(result.latency_ms)
    if rows:
        cv2.imwrite(str(out / "contact_sheet.png"), cv2.cvtColor(contact_sheet(rows), cv2.COLOR_RGB2BGR))
    node_received = int(diagnostics.get("frames_received", 0))
    summary = {
        "frames_sent": len(stamps),
        "frames_received": len(rows),
        "frames_dropped": int(diagnostics.get("frames_dropped", 0)),
        "frames_lost_in_transport": len(stamps) - node_received,
        "latency_ms_median": _percentile(latencies, 50),
        "latency_ms_p99": _percentile(latencies, 99),
        "node_latency_ms_median": _number(diagnostics.get("latency_ms_median")),
        "inference_ms_median": _number(diagnostics.get("inference_ms_median")),
        "backend": diagnostics.get("backend", params["pipeline.backend"]),
        "text_encoder": params["text.encoder"],
        "model": diagnostics.get("model", checkpoint),
        "precision": diagnostics.get("precision", ""),
        "threads": diagnostics.get("threads", ""),
        "frame_size": [width, height],
        "rate_hz": rate,
        "elapsed_s": round(elapsed, 1),
        "ros_domain_id": domain,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


__all__ = ["contact_sheet", "run_demo", "sample_frames"]
