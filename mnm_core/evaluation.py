"""Evaluate a fusion method over a folder of pairs: per-image and mean metrics, outputs, HTML report.

Methods:
- `visible`: the output is the visible image itself (lower bound: no infrared at all);
- `real-ir`: classical fusion with the *real* IR: per-pixel max of the visible luminance Y and the IR,
  recombined with the visible Cb/Cr (upper bound: the IR the model never sees);
- `model`: the mnm frame pipeline (`mnm_core.pipeline.Fuser`) on the visible image only, as in the
  missing-IR protocol; the real IR only scores the pseudo-IR (PSNR, SSIM, hotspot_auc) and the fusion
  (CE, Qcb).

Every method's rows also score the two trivial pseudo-IR guesses, the visible Y and 1 − Y, on the same
three pseudo-IR scores (keys ending in `_vis_y` and `_inv_vis_y`): a pseudo-IR is only worth having
where it beats both.

Outputs under OUT: per_image.csv, summary.json, fused/NAME.png, pseudo_ir/NAME.png (model only),
thumbs/, chart.png and report.html.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnm_core.errors import DataError, InputError
from mnm_core.guesses import GUESS_KEYS, PSEUDO_IR_SCORES, pseudo_ir_comparison
from mnm_core.metrics import METRIC_KEYS, MODES, fusion_metrics
from mnm_core.pairs import LoadedPair, Skipped, find_pairs, load_pair

LOGGER = logging.getLogger(__name__)

METHODS = ("visible", "real-ir", "model")
BASELINES = ("visible", "real-ir")


@dataclass
class MethodOutput:
    """What a method produces for one pair: the fused image (layout of vis) and maybe a pseudo-IR (H×W)."""

    fused: np.ndarray
    pseudo_ir: np.ndarray | None = None


Method = Callable[[np.ndarray, np.ndarray], MethodOutput]
"""(vis, ir) uint8 → MethodOutput. Methods that obey the missing-IR protocol ignore `ir`."""


def fuse_visible(vis: np.ndarray, ir: np.ndarray) -> MethodOutput:
    """The `visible` baseline: the visible image unchanged."""
    return MethodOutput(vis.copy())


def fuse_real_ir(vis: np.ndarray, ir: np.ndarray) -> MethodOutput:
    """The `real-ir` baseline: max(Y_vis, IR) with the visible chroma (BT.601 full range)."""
    if vis.ndim == 2:
        return MethodOutput(np.maximum(vis, ir))
    from mnm_core.colour import rgb_to_ycbcr, ycbcr_to_rgb

    ycbcr = rgb_to_ycbcr(vis.astype(np.float32) / 255.0)
    ycbcr[..., 0] = np.maximum(ycbcr[..., 0], ir.astype(np.float32) / 255.0)
    return MethodOutput(np.floor(ycbcr_to_rgb(ycbcr) * 255.0 + 0.5).astype(np.uint8))


class ModelMethod:
    """The mnm pipeline as a method: sees the visible image only. Close it (or use `with`) when done."""

    def __init__(self, checkpoint: str | Path | None = None, backend: str = "torch",
                 text_encoder: str = "auto") -> None:
        """text_encoder: 'auto' = the encoder the checkpoint was trained with; 'none' = identity modulation.
        The modulation is computed synchronously for every image, so results are reproducible."""
        from mnm_core.config import PipelineConfig, TextConfig
        from mnm_core.pipeline import Fuser

        config = PipelineConfig(checkpoint=str(checkpoint or ""), backend=backend)
        text = None if text_encoder == "auto" else TextConfig(encoder=text_encoder)
        self.fuser = Fuser.from_config(config, text, synchronous=True)
        self.text_encoder = str(self.fuser.modulation_source.stats().get("encoder", "none"))
        """Fingerprint of the text encoder in use ('none': identity modulation)."""

    def __call__(self, vis: np.ndarray, ir: np.ndarray) -> MethodOutput:
        result = self.fuser.process(vis, layout="gray" if vis.ndim == 2 else "rgb")
        return MethodOutput(result.fused, result.pseudo_ir)

    def close(self) -> None:
        self.fuser.close()

    def __enter__(self) -> ModelMethod:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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


def mean_metrics(rows: list[dict[str, object]], keys: tuple[str, ...]) -> dict[str, float | None]:
    """Mean of each key over the rows that have a finite value for it (None where there is none)."""
    means: dict[str, float | None] = {}
    for key in keys:
        values = [float(r[key]) for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
        means[key] = float(np.mean(values)) if values else None
    return means


def result_keys(method: str) -> tuple[str, ...]:
    """The per-image (and `mean`) keys of `method`: the fusion metrics, the pseudo-IR scores where the
    method makes a pseudo-IR (the model), then the trivial guesses' scores."""
    return METRIC_KEYS + (PSEUDO_IR_SCORES if method == "model" else ()) + GUESS_KEYS


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png", image[..., ::-1] if image.ndim == 3 else image)
    if not ok:
        raise DataError(f"{path}: PNG encoding failed")
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded.tofile(path)


def _score(loaded: LoadedPair, output: MethodOutput, mode: str, evaluated: bool) -> dict[str, object]:
    """One row: fusion metrics, plus the pseudo-IR comparison for the evaluated method (not the baselines)."""
    row: dict[str, object] = {"name": loaded.name, "height": loaded.ir.shape[0], "width": loaded.ir.shape[1]}
    row.update(fusion_metrics(loaded.vis, loaded.ir, output.fused, mode=mode))
    if evaluated:
        row.update(pseudo_ir_comparison(loaded.vis, loaded.ir, output.pseudo_ir))
    row["notes"] = "; ".join(loaded.notes)
    return row


def write_csv(path: Path, rows: list[dict[str, object]], columns: list[str]) -> None:
    """Rows as CSV with these columns (others ignored); floats to 10 significant digits."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})


def evaluate(data_dir: str | Path, method: str, out_dir: str | Path, mode: str = "vifb",
             checkpoint: str | Path | None = None, baselines: bool = True, progress: bool = True,
             report: bool = True, text_encoder: str = "auto") -> EvalResult:
    """Run `method` over the pairs of `data_dir`, score it, and write the outputs under `out_dir`.

    baselines: also score `visible` and `real-ir` (metrics only) for the comparison table and chart.
    Pairs that cannot be loaded or processed are skipped with a reason (logged and in summary.json);
    DataError when no pair at all could be scored.
    """
    from tqdm import tqdm

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if mode not in MODES:
        raise InputError(f"unknown metric mode {mode!r}; choose one of {', '.join(MODES)}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    pairs, skipped = find_pairs(data_dir)
    for item in skipped:
        LOGGER.warning("skipped %s: %s", item.name, item.reason)
    methods: dict[str, Method] = {"visible": fuse_visible, "real-ir": fuse_real_ir}
    model = ModelMethod(checkpoint, text_encoder=text_encoder) if method == "model" else None
    if model is not None:
        methods["model"] = model
    compared = [method] + ([b for b in BASELINES if b != method] if baselines else [])
    keys = result_keys(method)
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in compared}
    images: list[dict[str, str]] = []
    start = time.perf_counter()
    try:
        for pair in tqdm(pairs, desc=f"eval {method}", unit="img", disable=not progress):
            try:
                loaded = load_pair(pair)
                outputs = {name: methods[name](loaded.vis, loaded.ir) for name in compared}
                scored = {name: _score(loaded, outputs[name], mode, name == method) for name in compared}
            except (DataError, InputError) as exc:
                LOGGER.warning("skipped %s: %s", pair.name, exc)
                skipped.append(Skipped(pair.name, str(exc)))
                continue
            for note in loaded.notes:
                LOGGER.info("%s: %s", pair.name, note)
            for name in compared:
                rows[name].append(scored[name])
            main = outputs[method]
            _write_png(out_dir / "fused" / f"{pair.name}.png", main.fused)
            if main.pseudo_ir is not None:
                _write_png(out_dir / "pseudo_ir" / f"{pair.name}.png", main.pseudo_ir)
            if report:
                from mnm_core.report_html import write_thumbnails

                images.append(write_thumbnails(out_dir, pair.name, loaded.vis, loaded.ir, main.fused, main.pseudo_ir))
    finally:
        if model is not None:
            model.close()
    if not rows[method]:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5]) or "the folders hold no image pairs"
        raise DataError(f"{data_dir}: no pair could be evaluated ({reasons})")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "per_image.csv", rows[method], ["name", "height", "width", *keys, "notes"])
    means = {name: mean_metrics(rows[name], keys if name == method else METRIC_KEYS) for name in compared}
    summary = {
        "method": method,
        "mode": mode,
        "data": str(data_dir.resolve()),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "text_encoder": model.text_encoder if model is not None else None,
        "images": len(rows[method]),
        "mean": means[method],
        "baselines": {name: means[name] for name in compared if name != method},
        "skipped": [{"name": s.name, "reason": s.reason} for s in skipped],
        "seconds": round(time.perf_counter() - start, 3),
    }
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    result = EvalResult(method, mode, rows[method], means, skipped, summary_path)
    if report:
        from mnm_core.report_html import write_report

        result.report_path = write_report(out_dir, summary, means, rows[method], images, keys)
    LOGGER.info("%d images scored, %d skipped; results in %s", len(rows[method]), len(skipped), out_dir)
    return result


def format_table(means: dict[str, dict[str, float | None]], keys: tuple[str, ...] = METRIC_KEYS) -> str:
    """A markdown table of mean metrics, one row per method."""
    header = "| method | " + " | ".join(keys) + " |"
    lines = [header, "|" + "---|" * (len(keys) + 1)]
    for name, values in means.items():
        cells = ["—" if values.get(k) is None else f"{values[k]:.4f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["BASELINES", "METHODS", "EvalResult", "MethodOutput", "ModelMethod", "evaluate", "format_table",
           "fuse_real_ir", "fuse_visible", "mean_metrics", "result_keys", "write_csv"]
