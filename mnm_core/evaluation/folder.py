"""`mnm eval`: a method over a folder of pairs, beside the baselines: per-image and mean metrics, outputs,
HTML report.

The folder is a frame source for the evaluator (`mnm_core.evaluation.evaluator`): each pair becomes a
sample (the visible image, the real IR, the pair's notes); pairs that cannot be loaded are skipped with
the reason. The model sees the visible image only (missing-IR protocol); the real IR only scores the
pseudo-IR and the fusion (CE, Qcb). Every method's rows also score the two trivial pseudo-IR guesses,
the visible Y and 1 − Y (mnm_core/guesses.py).

Outputs under OUT: per_image.csv, summary.json, fused/NAME.png, pseudo_ir/NAME.png (model only),
thumbs/, chart.png, pseudo_ir_chart.png and report.html.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnm_core.errors import DataError, InputError
from mnm_core.evaluation.evaluator import Evaluator, Sample, result_keys, write_csv
from mnm_core.evaluation.methods import (
    BASELINES,
    EVAL_BACKEND,
    METHODS,
    Method,
    MethodOutput,
    ModelMethod,
    fuse_real_ir,
    fuse_visible,
)
from mnm_core.pairs import Pair, Skipped, find_pairs, load_pair

LOGGER = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """The outcome of `evaluate`: what went into summary.json, plus the per-image rows."""

    method: str
    mode: str
    rows: list[dict[str, object]]
    """Per image: name, height, width, the metric keys (and pseudo-IR keys), notes."""
    means: dict[str, dict[str, float | None]]
    """Method name → metric → mean over images (None where no finite value); the method first."""
    skipped: list[Skipped] = field(default_factory=list)
    summary_path: Path | None = None
    report_path: Path | None = None


def folder_samples(pairs: list[Pair], skipped: list[Skipped]) -> Iterator[Sample]:
    """The frame source of a folder: one sample per pair that loads (the others go to `skipped`)."""
    for pair in pairs:
        try:
            loaded = load_pair(pair)
        except (DataError, InputError) as exc:
            LOGGER.warning("skipped %s: %s", pair.name, exc)
            skipped.append(Skipped(pair.name, str(exc)))
            continue
        for note in loaded.notes:
            LOGGER.info("%s: %s", pair.name, note)
        yield Sample({"name": loaded.name}, loaded.vis, loaded.ir, loaded.notes)


class FolderSink:
    """Writes the evaluated method's fused (and pseudo-IR) images, and the report's thumbnails."""

    def __init__(self, out_dir: Path, thumbnails: bool) -> None:
        self.out_dir, self.thumbnails = out_dir, thumbnails
        self.images: list[dict[str, str]] = []
        """Per image: the report grid's thumbnail paths."""

    def write(self, sample: Sample, output: MethodOutput) -> None:
        name = str(sample.key["name"])
        _write_png(self.out_dir / "fused" / f"{name}.png", output.fused)
        if output.pseudo_ir is not None:
            _write_png(self.out_dir / "pseudo_ir" / f"{name}.png", output.pseudo_ir)
        if self.thumbnails:
            from mnm_core.report_html import write_thumbnails

            self.images.append(write_thumbnails(self.out_dir, name, sample.vis, sample.ir, output.fused,
                                                output.pseudo_ir))


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png", image[..., ::-1] if image.ndim == 3 else image)
    if not ok:
        raise DataError(f"{path}: PNG encoding failed")
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded.tofile(path)


def evaluate(data_dir: str | Path, method: str, out_dir: str | Path, mode: str = "vifb",
             checkpoint: str | Path | None = None, baselines: bool = True, progress: bool = True,
             report: bool = True, text_encoder: str = "auto", backend: str = EVAL_BACKEND,
             precision: str = "auto", limit: int | None = None, max_side: int | None = None) -> EvalResult:
    """Run `method` over the pairs of `data_dir`, score it, and write the outputs under `out_dir`.

    backend, precision: of the model's fast path (the torch backend by default: exact at any size;
    onnxruntime with int8 scores the quantised file).
    baselines: also score `visible` and `real-ir` (metrics only) for the comparison table and chart.
    limit: score only the first `limit` pairs (in name order), for quick checks.
    max_side: the model's working size (`PipelineConfig.max_side`); None = the pipeline's default.
    Pairs that cannot be loaded or processed are skipped with a reason (logged and in summary.json);
    DataError when no pair at all could be scored.
    """
    from tqdm import tqdm

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    pairs, skipped = find_pairs(data_dir)
    pairs = pairs[:limit]
    for item in skipped:
        LOGGER.warning("skipped %s: %s", item.name, item.reason)
    available: dict[str, Method] = {"visible": fuse_visible, "real-ir": fuse_real_ir}
    model = ModelMethod(checkpoint, backend, text_encoder, precision, max_side) if method == "model" else None
    if model is not None:
        available["model"] = model
    compared = [method] + ([b for b in BASELINES if b != method] if baselines else [])
    evaluator = Evaluator({name: available[name] for name in compared}, mode)
    sink = FolderSink(out_dir, thumbnails=report)
    start = time.perf_counter()
    try:
        samples = folder_samples(pairs, skipped)
        evaluator.run(tqdm(samples, total=len(pairs), desc=f"eval {method}", unit="img", disable=not progress),
                      sink)
    finally:
        if model is not None:
            model.close()
    skipped += evaluator.skipped
    rows = evaluator.rows[method]
    if not rows:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5]) or "the folders hold no image pairs"
        raise DataError(f"{data_dir}: no pair could be evaluated ({reasons})")
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = result_keys(method)
    write_csv(out_dir / "per_image.csv", rows, ["name", "height", "width", *keys, "notes"])
    means = evaluator.means()
    summary = {
        "method": method,
        "mode": mode,
        "data": str(data_dir.resolve()),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "text_encoder": model.text_encoder if model is not None else None,
        "images": len(rows),
        "mean": means[method],
        "baselines": {name: means[name] for name in compared if name != method},
        "skipped": [{"name": s.name, "reason": s.reason} for s in skipped],
        "seconds": round(time.perf_counter() - start, 3),
    }
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    result = EvalResult(method, mode, rows, means, skipped, summary_path)
    if report:
        from mnm_core.report_html import write_report

        result.report_path = write_report(out_dir, summary, means, rows, sink.images, keys)
    LOGGER.info("%d images scored, %d skipped; results in %s", len(rows), len(skipped), out_dir)
    return result


__all__ = ["EvalResult", "FolderSink", "evaluate", "folder_samples"]
