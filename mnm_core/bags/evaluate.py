"""Offline evaluation of a bag (`mnm bag-eval`): the frame pipeline on every n-th visible frame, metrics,
a new bag with the outputs, per-frame CSV, summary.json and an HTML report.

The bag is a frame source for the evaluator (`mnm_core.evaluation.evaluator`), read in two passes: the
first reads header stamps and pairs visible with thermal frames; the second decodes and yields each
selected visible frame as soon as its thermal partner (if any) has been read, copying every message to
the new bag on the way (bags are in receive order, so partners are close and wait in a small buffer).
The model sees only the visible frame (missing-IR protocol); the real IR only scores, the pseudo-IR
beside the trivial guesses visible Y and 1 − Y. summary.json's `mean` has the keys of
`mnm eval --method model`'s summary, computed by the same code.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnm_core.bags.pairing import Pairing, pair_by_stamp
from mnm_core.bags.reader import IMAGE_TYPE, BagReader, Frame, RawMessage
from mnm_core.bags.writer import BagWriter, Storage, image_message
from mnm_core.errors import DataError, InputError
from mnm_core.evaluation.evaluator import Evaluator, Sample, json_safe, mean_metrics, result_keys, write_csv
from mnm_core.evaluation.methods import EVAL_BACKEND, MethodOutput, ModelMethod
from mnm_core.frames import to_rgb
from mnm_core.metrics import to_gray

LOGGER = logging.getLogger(__name__)

PSEUDO_IR_TOPIC = "/mnm/pseudo_ir"
FUSED_TOPIC = "/mnm/fused"
KEYS = result_keys("model")
SAMPLES = 4
"""Frames shown in the report's sample grid."""
CSV_COLUMNS = ["index", "stamp_ns", "bag_time_ns", "height", "width", "ir_offset_ms", "latency_ms", "inference_ms",
               *KEYS, "notes"]


@dataclass
class BagEvalResult:
    rows: list[dict[str, object]]
    summary: dict[str, object]
    out_bag: Path
    summary_path: Path
    report_path: Path | None = None
    samples: list[dict[str, object]] = field(default_factory=list)


def _thermal(frame: Frame) -> np.ndarray:
    """A thermal frame as H×W uint8 (colour through rgb2gray; equal channels are gray already)."""
    return frame.image if frame.layout == "gray" else to_gray(frame.rgb())


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


class BagSource:
    """Pass 2 as a frame source: the selected visible frames with their thermal partners, in bag order (a
    frame whose partner never arrives comes at the end, scored without it); every message read is also
    copied to `copy_to`."""

    def __init__(self, reader: BagReader, copy_to: BagWriter, pairing: Pairing, selected: set[int],
                 topics: list[str]) -> None:
        self.reader, self.writer, self.pairing, self.selected = reader, copy_to, pairing, selected
        self.topics = topics
        self.wanted_ir = {j: i for i, j in enumerate(pairing.partner) if j is not None and i in selected}
        self.ir_frames: dict[int, Frame] = {}
        self.waiting: dict[int, Frame] = {}
        self.undecodable = 0

    def __iter__(self) -> Iterator[Sample]:
        counters = dict.fromkeys(self.topics, 0)
        for message in self.reader.messages(self.topics):
            yield from self._feed(message, counters[message.topic])
            counters[message.topic] += 1
        for index, frame in sorted(self.waiting.items()):
            yield self._sample(index, frame, None, note="thermal partner lost (bag damaged)")
        self.waiting.clear()

    def _feed(self, message: RawMessage, index: int) -> Iterator[Sample]:
        """One input message (index within its topic): copied to the output bag, and maybe a sample."""
        self.writer.add_topic(message.topic, message.msgtype)
        self.writer.write(message.topic, message.bag_time_ns, message.data)
        is_vis = message.topic == self.topics[0]
        if (is_vis and index not in self.selected) or (not is_vis and index not in self.wanted_ir):
            return
        try:
            frame = self.reader.decode(message)
        except DataError as exc:
            LOGGER.warning("frame %d of %s skipped: %s", index, message.topic, exc)
            self.undecodable += 1
            if not is_vis and self.wanted_ir[index] in self.waiting:
                yield self._sample(self.wanted_ir[index], self.waiting.pop(self.wanted_ir[index]), None)
            return
        if is_vis:
            partner = self.pairing.partner[index]
            if partner is None or partner in self.ir_frames:
                yield self._sample(index, frame, self.ir_frames.pop(partner, None) if partner is not None else None)
            else:
                self.waiting[index] = frame
        else:
            vis_index = self.wanted_ir[index]
            if vis_index in self.waiting:
                yield self._sample(vis_index, self.waiting.pop(vis_index), frame)
            else:
                self.ir_frames[index] = frame

    def _sample(self, index: int, frame: Frame, ir_frame: Frame | None, note: str = "") -> Sample:
        offset = self.pairing.offsets_ns[index] if ir_frame is not None else None
        key: dict[str, object] = {"index": index, "stamp_ns": frame.stamp_ns, "bag_time_ns": frame.bag_time_ns,
                                  "ir_offset_ms": None if offset is None else offset / 1e6}
        vis, notes = frame.rgb(), [note] if note else []
        ir = _thermal(ir_frame) if ir_frame is not None else None
        if ir is not None and ir.shape != vis.shape[:2]:
            notes.append(f"thermal frame is {ir.shape[1]}×{ir.shape[0]}, visible {vis.shape[1]}×{vis.shape[0]}: "
                         "no reference metrics")
            ir = None
        return Sample(key, vis, ir, notes, frame)


class BagSink:
    """Writes /mnm/pseudo_ir and /mnm/fused for each evaluated frame (its stamp, frame id, bag time and encoding
    family), and keeps the report's sample frames."""

    def __init__(self, writer: BagWriter, sample_at: set[int]) -> None:
        self.writer, self.sample_at = writer, sample_at
        self.samples: list[dict[str, object]] = []

    def write(self, sample: Sample, output: MethodOutput) -> None:
        frame = sample.frame
        assert frame is not None and output.pseudo_ir is not None
        types = self.writer.types
        self.writer.add_topic(PSEUDO_IR_TOPIC, IMAGE_TYPE)
        self.writer.add_topic(FUSED_TOPIC, IMAGE_TYPE)
        self.writer.write(PSEUDO_IR_TOPIC, frame.bag_time_ns,
                          image_message(types, output.pseudo_ir, "gray", frame.stamp_ns, frame.frame_id))
        self.writer.write(FUSED_TOPIC, frame.bag_time_ns,  # RGB ↔ BGR is its own inverse: back to the input's order
                          image_message(types, to_rgb(output.fused, frame.layout), frame.layout, frame.stamp_ns,
                                        frame.frame_id))
        if sample.key["index"] in self.sample_at:
            self.samples.append({"index": sample.key["index"], "stamp_ns": frame.stamp_ns, "vis": sample.vis,
                                 "ir": sample.ir, "pseudo_ir": output.pseudo_ir, "fused": output.fused})


def _latency_summary(rows: list[dict[str, object]]) -> dict[str, float]:
    values = np.array([float(r["latency_ms"]) for r in rows])  # type: ignore[arg-type]
    return {"mean": float(values.mean()), "p50": float(np.percentile(values, 50)),
            "p90": float(np.percentile(values, 90)), "p99": float(np.percentile(values, 99)),
            "max": float(values.max())}


def evaluate_bag(bag: str | Path, out_dir: str | Path, topic: str, ir_topic: str | None = None, every: int = 1,
                 checkpoint: str | Path | None = None, backend: str = EVAL_BACKEND, mode: str = "vifb",
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
            evaluator = Evaluator({"model": method}, mode)
            source, sink = BagSource(reader, writer, pairing, selected, topics), BagSink(writer, sample_at)
            evaluator.run(tqdm(source, total=len(selected), desc="bag-eval", unit="frame", disable=not progress),
                          sink)
            counts = dict(writer.counts)
            encoder = method.text_encoder
        damage, recovered = reader.damage, reader.recovered
    rows = sorted(evaluator.rows["model"], key=lambda r: int(r["index"]))  # type: ignore[call-overload]
    skipped = [{"name": f"frame {s.name}", "reason": s.reason} for s in evaluator.skipped]
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
        "undecodable": bad_stamps + source.undecodable, "skipped": skipped, "damage": damage,
        "recovered": recovered,
        "mean": mean_metrics(rows, KEYS), "latency_ms": _latency_summary(rows),
        "out_bag": str(out_bag), "out_bag_counts": counts, "seconds": round(time.perf_counter() - start, 3)}
    write_csv(out_dir / "per_frame.csv", rows, CSV_COLUMNS)
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")
    result = BagEvalResult(rows, summary, out_bag, summary_path, samples=sink.samples)
    if report:
        from mnm_core.bags.report import write_bag_report

        result.report_path = write_bag_report(out_dir, summary, rows, sink.samples)
    return result


__all__ = ["FUSED_TOPIC", "KEYS", "PSEUDO_IR_TOPIC", "BagEvalResult", "BagSink", "BagSource", "evaluate_bag"]
