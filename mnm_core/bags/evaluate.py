"""Offline evaluation of a bag (`mnm bag-eval`): the frame pipeline on every n-th visible frame, metrics,
a new bag with the outputs, per-frame CSV, summary.json and an HTML report.

Two passes over the bag: the first reads header stamps and pairs visible with thermal frames; the second
decodes, processes and writes. Thermal frames wait in a small buffer until their visible partner comes
(bags are in receive order, so partners are close). The model sees only the visible frame (missing-IR
protocol); the real IR only scores, the pseudo-IR beside the trivial guesses visible Y and 1 − Y.
summary.json's `mean` has the keys of `mnm eval --method model`'s summary.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnm_core.bags.pairing import Pairing, pair_by_stamp
from mnm_core.bags.reader import IMAGE_TYPE, BagReader, Frame, RawMessage
from mnm_core.bags.writer import BagWriter, Storage, image_message
from mnm_core.errors import DataError, InputError
from mnm_core.evaluation import ModelMethod, mean_metrics, result_keys, write_csv
from mnm_core.guesses import pseudo_ir_comparison
from mnm_core.metrics import MODES, fusion_metrics, to_gray

LOGGER = logging.getLogger(__name__)

PSEUDO_IR_TOPIC = "/mnm/pseudo_ir"
FUSED_TOPIC = "/mnm/fused"
KEYS = result_keys("model")
SAMPLES = 4
"""Frames shown in the report's sample grid."""


@dataclass
class BagEvalResult:
    rows: list[dict[str, object]]
    summary: dict[str, object]
    out_bag: Path
    summary_path: Path
    report_path: Path | None = None
    samples: list[dict[str, object]] = field(default_factory=list)


def no_reference_metrics(fused: np.ndarray, mode: str) -> dict[str, float]:
    """AG, EI, EN and SF: the metrics that need only the fused image (no thermal partner)."""
    from mnm_core.metrics.vifb import avg_gradient, edge_intensity, entropy, spatial_frequency

    image = to_gray(fused) if mode == "gray" else fused
    return {"AG": avg_gradient(image), "EI": edge_intensity(image), "EN": entropy(image),
            "SF": spatial_frequency(image)}


def _rgb(image: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(image[:, :, ::-1]) if layout == "bgr" else image


def _thermal(frame: Frame) -> np.ndarray:
    """A thermal frame as H×W uint8 (equal channels collapsed, other colour through rgb2gray)."""
    if frame.image.ndim == 2:
        return frame.image
    rgb = _rgb(frame.image, frame.layout)
    return np.ascontiguousarray(rgb[:, :, 0]) if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (
        rgb[:, :, 1] == rgb[:, :, 2]).all() else to_gray(rgb)


def _index_stamps(reader: BagReader, topics: list[str]) -> tuple[dict[str, list[int | None]], int]:
    """Pass 1: header stamps per topic in bag order (undecodable messages get None), and their count."""
    stamps: dict[str, list[int | None]] = {t: [] for t in topics}
    bad = 0
    for message in reader.messages(topics):
        try:
            stamps[message.topic].append(reader.header_stamp(message))
        except DataError as exc:
            LOGGER.warning("%s", exc)
            stamps[message.topic].append(None)
            bad += 1
    return stamps, bad


class _Evaluator:
    """Pass 2: processes selected visible frames as soon as their thermal partner (if any) has been read."""

    def __init__(self, reader: BagReader, writer: BagWriter, method: ModelMethod, mode: str, pairing: Pairing,
                 selected: set[int], sample_at: set[int], topic: str) -> None:
        self.reader, self.writer, self.method, self.mode = reader, writer, method, mode
        self.pairing, self.selected, self.sample_at = pairing, selected, sample_at
        self.topic = topic
        self.wanted_ir = {j: i for i, j in enumerate(pairing.partner) if j is not None and i in selected}
        self.ir_frames: dict[int, Frame] = {}
        self.waiting: dict[int, Frame] = {}
        self.rows: list[dict[str, object]] = []
        self.samples: list[dict[str, object]] = []
        self.undecodable = 0

    def feed(self, message: RawMessage, index: int) -> None:
        """One input message (index within its topic): copied to the output bag, and maybe processed."""
        self.writer.add_topic(message.topic, message.msgtype)
        self.writer.write(message.topic, message.bag_time_ns, message.data)
        is_vis = message.topic == self.topic
        if (is_vis and index not in self.selected) or (not is_vis and index not in self.wanted_ir):
            return
        try:
            frame = self.reader.decode(message)
        except DataError as exc:
            LOGGER.warning("frame %d of %s skipped: %s", index, message.topic, exc)
            self.undecodable += 1
            if not is_vis and self.wanted_ir[index] in self.waiting:
                self._process(self.wanted_ir[index], self.waiting.pop(self.wanted_ir[index]), None)
            return
        if is_vis:
            partner = self.pairing.partner[index]
            if partner is None or partner in self.ir_frames:
                self._process(index, frame, self.ir_frames.pop(partner, None) if partner is not None else None)
            else:
                self.waiting[index] = frame
        else:
            vis_index = self.wanted_ir[index]
            if vis_index in self.waiting:
                self._process(vis_index, self.waiting.pop(vis_index), frame)
            else:
                self.ir_frames[index] = frame

    def finish(self) -> None:
        """Process visible frames whose thermal partner never arrived (damaged bag) without reference metrics."""
        for index, frame in sorted(self.waiting.items()):
            self._process(index, frame, None, note="thermal partner lost (bag damaged)")
        self.waiting.clear()
        self.rows.sort(key=lambda r: int(r["index"]))  # type: ignore[arg-type]

    def _process(self, index: int, frame: Frame, ir_frame: Frame | None, note: str = "") -> None:
        result = self.method.fuser.process(frame.image, layout=frame.layout)
        vis, fused = _rgb(frame.image, frame.layout), _rgb(result.fused, frame.layout)
        offset = self.pairing.offsets_ns[index] if ir_frame is not None else None
        row: dict[str, object] = {
            "index": index, "stamp_ns": frame.stamp_ns, "bag_time_ns": frame.bag_time_ns,
            "height": frame.image.shape[0], "width": frame.image.shape[1],
            "ir_offset_ms": None if offset is None else offset / 1e6,
            "latency_ms": result.timings_ms["total"], "inference_ms": result.timings_ms["inference"]}
        notes = [note] if note else []
        ir = _thermal(ir_frame) if ir_frame is not None else None
        if ir is not None and ir.shape != vis.shape[:2]:
            notes.append(f"thermal frame is {ir.shape[1]}×{ir.shape[0]}, visible {vis.shape[1]}×{vis.shape[0]}: "
                         "no reference metrics")
            ir = None
        try:
            if ir is not None:
                row.update(fusion_metrics(vis, ir, fused, mode=self.mode))
                row.update(pseudo_ir_comparison(vis, ir, result.pseudo_ir))
            else:
                row.update(no_reference_metrics(fused, self.mode))
        except InputError as exc:
            notes.append(f"not scored: {exc}")
        row["notes"] = "; ".join(notes)
        self.rows.append(row)
        types = self.writer.types
        self.writer.add_topic(PSEUDO_IR_TOPIC, IMAGE_TYPE)
        self.writer.add_topic(FUSED_TOPIC, IMAGE_TYPE)
        self.writer.write(PSEUDO_IR_TOPIC, frame.bag_time_ns,
                          image_message(types, result.pseudo_ir, "gray", frame.stamp_ns, frame.frame_id))
        self.writer.write(FUSED_TOPIC, frame.bag_time_ns,
                          image_message(types, result.fused, frame.layout, frame.stamp_ns, frame.frame_id))
        if index in self.sample_at:
            self.samples.append({"index": index, "stamp_ns": frame.stamp_ns, "vis": vis, "ir": ir,
                                 "pseudo_ir": result.pseudo_ir, "fused": fused})


def _latency_summary(rows: list[dict[str, object]]) -> dict[str, float]:
    values = np.array([float(r["latency_ms"]) for r in rows])  # type: ignore[arg-type]
    return {"mean": float(values.mean()), "p50": float(np.percentile(values, 50)),
            "p90": float(np.percentile(values, 90)), "p99": float(np.percentile(values, 99)),
            "max": float(values.max())}


CSV_COLUMNS = ["index", "stamp_ns", "bag_time_ns", "height", "width", "ir_offset_ms", "latency_ms", "inference_ms",
               *KEYS, "notes"]


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def evaluate_bag(bag: str | Path, out_dir: str | Path, topic: str, ir_topic: str | None = None, every: int = 1,
                 checkpoint: str | Path | None = None, backend: str = "torch", mode: str = "vifb",
                 tolerance_ms: float = 20.0, storage: Storage | None = None, progress: bool = True,
                 report: bool = True, text_encoder: str = "auto") -> BagEvalResult:
    """Evaluate `topic` of `bag` (see the module docstring); outputs under `out_dir`, the new bag at out_dir/bag.

    storage: of the new bag (default: that of the input). text_encoder: as `mnm eval` ('auto' = the
    checkpoint's encoder, computed for every frame; 'none' = identity modulation). DataError for a
    missing or non-image topic, an unreadable bag, or when no frame could be evaluated; a damaged bag is
    evaluated up to the damage.
    """
    from tqdm import tqdm

    if every < 1:
        raise InputError(f"--every must be ≥ 1, got {every}")
    if mode not in MODES:
        raise InputError(f"unknown metric mode {mode!r}; choose one of {', '.join(MODES)}")
    out_dir = Path(out_dir)
    out_bag = out_dir / "bag"
    if out_bag.exists():
        raise DataError(f"{out_bag} exists already; remove it or choose another --out")
    start = time.perf_counter()
    with BagReader(bag) as reader:
        reader.require_image_topic(topic)
        topics = [topic]
        if ir_topic:
            reader.require_image_topic(ir_topic)
            topics.append(ir_topic)
        stamps, bad_stamps = _index_stamps(reader, topics)
        if not stamps[topic]:
            raise DataError(f"topic {topic} of {bag} holds no readable message" + (f" ({reader.damage})"
                                                                                     if reader.damage else ""))
        # undecodable messages get stamps far from everything (and from each other): they never pair
        vis_stamps = [s if s is not None else -(2**62) for s in stamps[topic]]
        ir_stamps = [s if s is not None else -(2**61) for s in stamps.get(ir_topic or "", [])]
        tolerance_ns = round(tolerance_ms * 1e6)
        pairing = pair_by_stamp(vis_stamps, ir_stamps, tolerance_ns)
        if ir_topic:
            (LOGGER.warning if pairing.unpaired else LOGGER.info)("%s", pairing.describe(tolerance_ns))
        selected = {i for i in range(0, len(vis_stamps), every) if stamps[topic][i] is not None}
        ordered = sorted(selected)
        picks = np.linspace(0, len(ordered) - 1, min(SAMPLES, len(ordered))).round().astype(int)
        sample_at = {ordered[k] for k in picks}
        out_dir.mkdir(parents=True, exist_ok=True)
        storage = storage or ("mcap" if any(Path(bag).glob("*.mcap")) or str(bag).endswith(".mcap") else "sqlite3")
        with ModelMethod(checkpoint, backend, text_encoder) as method, BagWriter(out_bag, storage) as writer:
            evaluator = _Evaluator(reader, writer, method, mode, pairing, selected, sample_at, topic)
            counters = {t: 0 for t in topics}
            with tqdm(total=len(selected), desc="bag-eval", unit="frame", disable=not progress) as bar:
                for message in reader.messages(topics):
                    done = len(evaluator.rows)
                    evaluator.feed(message, counters[message.topic])
                    counters[message.topic] += 1
                    bar.update(len(evaluator.rows) - done)
                evaluator.finish()
            counts = dict(writer.counts)
            encoder = method.text_encoder
        damage, recovered = reader.damage, reader.recovered
    rows = evaluator.rows
    if not rows:
        raise DataError(f"no frame of {topic} in {bag} could be evaluated" + (f" ({damage})" if damage else ""))
    if damage:
        LOGGER.warning("evaluated %d frames up to the damage: %s", len(rows), damage)
    paired = sum(1 for r in rows if r.get("ir_offset_ms") is not None)
    summary: dict[str, object] = {
        "bag": str(Path(bag).resolve()), "topic": topic, "ir_topic": ir_topic, "every": every, "mode": mode,
        "checkpoint": str(checkpoint) if checkpoint else None, "backend": backend, "text_encoder": encoder,
        "tolerance_ms": tolerance_ms,
        "frames_in_bag": len(vis_stamps), "frames": len(rows), "images": len(rows),
        "paired": paired, "unpaired": len(rows) - paired if ir_topic else None,
        "undecodable": bad_stamps + evaluator.undecodable, "damage": damage, "recovered": recovered,
        "mean": mean_metrics(rows, KEYS), "latency_ms": _latency_summary(rows),
        "out_bag": str(out_bag), "out_bag_counts": counts, "seconds": round(time.perf_counter() - start, 3)}
    write_csv(out_dir / "per_frame.csv", rows, CSV_COLUMNS)
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n")
    result = BagEvalResult(rows, summary, out_bag, summary_path, samples=evaluator.samples)
    if report:
        from mnm_core.bags.report import write_bag_report

        result.report_path = write_bag_report(out_dir, summary, rows, evaluator.samples)
    return result


__all__ = ["FUSED_TOPIC", "KEYS", "PSEUDO_IR_TOPIC", "BagEvalResult", "evaluate_bag", "no_reference_metrics"]
