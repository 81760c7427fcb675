"""The one evaluator: methods run on samples from a frame source, scored into rows, outputs to a sink.

A frame source (a folder of pairs, a bag) yields `Sample`s: a visible image, its thermal partner when
there is one, and the columns that identify it. For each sample the evaluator runs every method, scores
each output (the fusion metrics against both sources, or only the no-reference ones without a partner;
the evaluated method's pseudo-IR beside the trivial guesses), and hands the evaluated method's output to
the sink (image files, an output bag). `mnm eval` and `mnm bag-eval` are this loop over two sources.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mnm_core.errors import DataError, InputError
from mnm_core.evaluation.methods import Method, MethodOutput
from mnm_core.frames import Frame
from mnm_core.guesses import GUESS_KEYS, PSEUDO_IR_SCORES, pseudo_ir_comparison
from mnm_core.metrics import FUSED_WARM_KEY, METRIC_KEYS, MODES, fused_image_scores, to_gray
from mnm_core.pairs import Skipped

LOGGER = logging.getLogger(__name__)


@dataclass
class Sample:
    """One visible image to evaluate and, when the source has one, its thermal partner."""

    key: dict[str, object]
    """The columns that identify the sample in its source (e.g. name; or index and stamps), first in its row."""
    vis: np.ndarray
    """uint8 H×W×3 RGB or H×W gray."""
    ir: np.ndarray | None
    """uint8 H×W of the same size, or None: scored without a reference."""
    notes: list[str] = field(default_factory=list)
    frame: Frame | None = None
    """The decoded source frame, for sinks that write outputs back in its encoding and header."""

    @property
    def name(self) -> str:
        """The first key column (a pair's name, a frame's index), for messages."""
        return str(next(iter(self.key.values())))


class Sink(Protocol):
    def write(self, sample: Sample, output: MethodOutput) -> None:
        """Keep the evaluated method's output for one sample."""


FUSED_KEYS = (*METRIC_KEYS, FUSED_WARM_KEY)
"""What every method's fused image is scored on when there is a real IR."""


def result_keys(method: str) -> tuple[str, ...]:
    """The per-image (and `mean`) keys of `method`: the fusion metrics and the fused image's warm-object
    AUC, the pseudo-IR scores where the method makes a pseudo-IR (the model), then the trivial guesses'."""
    return FUSED_KEYS + (PSEUDO_IR_SCORES if method == "model" else ()) + GUESS_KEYS


def no_reference_metrics(fused: np.ndarray, mode: str) -> dict[str, float]:
    """AG, EI, EN and SF: the metrics that need only the fused image (no thermal partner)."""
    from mnm_core.metrics.vifb import avg_gradient, edge_intensity, entropy, spatial_frequency

    image = to_gray(fused) if mode == "gray" else fused
    return {"AG": avg_gradient(image), "EI": edge_intensity(image), "EN": entropy(image),
            "SF": spatial_frequency(image)}


def score(sample: Sample, output: MethodOutput, mode: str, evaluated: bool) -> dict[str, object]:
    """One row: the sample's key, size, the pipeline timings (model), the metrics, notes.

    With a thermal partner: the six fusion metrics, and for the evaluated method the pseudo-IR comparison;
    without: the no-reference metrics. A metric that cannot be computed is a note, not a failure.
    """
    row: dict[str, object] = {**sample.key, "height": sample.vis.shape[0], "width": sample.vis.shape[1]}
    if output.timings_ms:
        row.update(latency_ms=output.timings_ms["total"], inference_ms=output.timings_ms["inference"])
    notes = list(sample.notes)
    try:
        if sample.ir is None:
            row.update(no_reference_metrics(output.fused, mode))
        else:
            row.update(fused_image_scores(sample.vis, sample.ir, output.fused, mode=mode))
            if evaluated:
                row.update(pseudo_ir_comparison(sample.vis, sample.ir, output.pseudo_ir))
    except InputError as exc:
        notes.append(f"not scored: {exc}")
    row["notes"] = "; ".join(notes)
    return row


class Evaluator:
    """Runs `methods` (the evaluated one first) on every sample of a source and scores them."""

    def __init__(self, methods: dict[str, Method], mode: str = "vifb") -> None:
        if mode not in MODES:
            raise InputError(f"unknown metric mode {mode!r}; choose one of {', '.join(MODES)}")
        self.methods, self.mode = methods, mode
        self.evaluated = next(iter(methods))
        self.rows: dict[str, list[dict[str, object]]] = {name: [] for name in methods}
        """Method → one row per evaluated sample, in the order the source gave them."""
        self.skipped: list[Skipped] = []

    def run(self, samples: Iterable[Sample], sink: Sink) -> None:
        """Evaluate every sample; one that a method cannot process is skipped with the reason (logged)."""
        for sample in samples:
            try:
                outputs = {method: run(sample.vis, sample.ir) for method, run in self.methods.items()}
            except (DataError, InputError) as exc:
                LOGGER.warning("skipped %s: %s", sample.name, exc)
                self.skipped.append(Skipped(sample.name, str(exc)))
                continue
            for method, output in outputs.items():
                self.rows[method].append(score(sample, output, self.mode, method == self.evaluated))
            sink.write(sample, outputs[self.evaluated])

    def means(self) -> dict[str, dict[str, float | None]]:
        """Method → key → mean over its rows (the evaluated method's keys, the fusion metrics for the others)."""
        return {name: mean_metrics(rows, result_keys(name) if name == self.evaluated else FUSED_KEYS)
                for name, rows in self.rows.items()}


def mean_metrics(rows: list[dict[str, object]], keys: tuple[str, ...]) -> dict[str, float | None]:
    """Mean of each key over the rows that have a finite value for it (None where there is none)."""
    means: dict[str, float | None] = {}
    for key in keys:
        values = [float(r[key]) for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
        means[key] = float(np.mean(values)) if values else None
    return means


def write_csv(path: Path, rows: list[dict[str, object]], columns: list[str]) -> None:
    """Rows as CSV with these columns (others ignored); floats to 10 significant digits."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})


def json_safe(value: object) -> object:
    """`value` with NaN and ±inf floats (at any depth of dicts) as None, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return value


def format_table(means: dict[str, dict[str, float | None]], keys: tuple[str, ...] = METRIC_KEYS) -> str:
    """A markdown table of mean metrics, one row per method."""
    header = "| method | " + " | ".join(keys) + " |"
    lines = [header, "|" + "---|" * (len(keys) + 1)]
    for name, values in means.items():
        cells = ["—" if values.get(k) is None else f"{values[k]:.4f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["Evaluator", "Sample", "Sink", "format_table", "json_safe", "mean_metrics",
           "no_reference_metrics", "result_keys", "score", "write_csv"]
