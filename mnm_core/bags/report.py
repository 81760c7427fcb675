"""The HTML report of `mnm bag-eval`: settings, mean metrics, metrics over time, latency histogram and
sample frame grids (matplotlib PNGs next to report.html)."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from mnm_core.guesses import GUESSES, PSEUDO_IR_SCORES, guess_means
from mnm_core.metrics import HIGHER_IS_BETTER, METRIC_KEYS
from mnm_core.report_html import REPORT_STYLE, bar_chart, html_cell, means_table, pseudo_ir_section


def _figure(**kwargs: object):  # -> matplotlib Figure, imported lazily
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    return Figure(layout="constrained", **kwargs)


def metrics_over_time(rows: list[dict[str, object]], keys: tuple[str, ...], path: Path) -> Path | None:
    """One panel per metric with a value, plotted against the frame stamp (s from the first frame); a pseudo-IR
    score's panel also shows the trivial guesses' values (keys with a `_vis_y`/`_inv_vis_y` suffix), dashed."""
    keys = tuple(k for k in keys if any(isinstance(r.get(k), float) and math.isfinite(r[k]) for r in rows))
    if not keys:
        return None
    t0 = min(int(r["stamp_ns"]) for r in rows)  # type: ignore[call-overload]
    times = np.array([(int(r["stamp_ns"]) - t0) / 1e9 for r in rows])  # type: ignore[call-overload]
    columns = min(4, len(keys))
    figure = _figure(figsize=(3.6 * columns, 2.4 * math.ceil(len(keys) / columns)))
    axes = figure.subplots(math.ceil(len(keys) / columns), columns, squeeze=False).ravel()
    for axis, key in zip(axes, keys):
        axis.plot(times, _series(rows, key), ".-", markersize=3, linewidth=0.8, label="model")
        guesses = [(label, f"{key}_{guess}") for guess, label in GUESSES.items() if f"{key}_{guess}" in rows[0]]
        for label, guess_key in guesses:
            axis.plot(times, _series(rows, guess_key), "--", linewidth=0.7, label=label)
        if guesses:
            axis.legend(fontsize=6)
        axis.set_title(f"{key} ({'higher' if HIGHER_IS_BETTER.get(key, True) else 'lower'} is better)", fontsize=9)
        axis.set_xlabel("time (s)", fontsize=8)
        axis.tick_params(labelsize=8)
    for axis in axes[len(keys):]:
        axis.set_visible(False)
    figure.savefig(path, dpi=90)
    return path


def _series(rows: list[dict[str, object]], key: str) -> np.ndarray:
    return np.array([float(r[key]) if isinstance(r.get(key), float) else np.nan for r in rows])  # type: ignore[arg-type]


def latency_histogram(values_ms: list[float], path: Path, label: str = "pipeline time per frame (ms)") -> Path:
    """Histogram of per-frame latencies (ms), with the mean and p90 marked."""
    values = np.asarray(values_ms, dtype=float)
    figure = _figure(figsize=(5.5, 3.0))
    axis = figure.subplots()
    axis.hist(values, bins=min(40, max(5, len(values) // 3)), color="#1f77b4")
    for name, value, style in (("mean", values.mean(), "-"), ("p90", np.percentile(values, 90), "--")):
        axis.axvline(value, color="#d62728", linestyle=style, label=f"{name} {value:.1f} ms")
    axis.set_xlabel(label)
    axis.set_ylabel("frames")
    axis.legend(fontsize=8)
    figure.savefig(path, dpi=90)
    return path


def sample_grid(samples: list[dict[str, object]], path: Path) -> Path | None:
    """Rows of visible | pseudo-IR | fused | real IR (where paired) for a few frames."""
    if not samples:
        return None
    titles = (("vis", "visible"), ("pseudo_ir", "pseudo-IR"), ("fused", "fused"), ("ir", "real IR"))
    figure = _figure(figsize=(10, 2.3 * len(samples)))
    axes = figure.subplots(len(samples), len(titles), squeeze=False)
    for row, sample in zip(axes, samples):
        for axis, (key, title) in zip(row, titles):
            image = sample.get(key)
            axis.axis("off")
            if image is None:
                axis.text(0.5, 0.5, "—", ha="center", va="center")
            else:
                axis.imshow(image, cmap="gray" if np.ndim(image) == 2 else None, vmin=0, vmax=255)
            axis.set_title(f"{title}  #{sample['index']}", fontsize=8)
    figure.savefig(path, dpi=80)
    return path


def write_bag_report(out_dir: Path, summary: dict[str, object], rows: list[dict[str, object]],
                     samples: list[dict[str, object]]) -> Path:
    """Write metrics_over_time.png, latency.png, samples.png, pseudo_ir_chart.png and report.html into out_dir."""
    plots = [("Metrics over time", metrics_over_time(rows, METRIC_KEYS + PSEUDO_IR_SCORES,
                                                     out_dir / "metrics_over_time.png")),
             ("Pipeline latency", latency_histogram([float(r["latency_ms"]) for r in rows],  # type: ignore[arg-type]
                                                    out_dir / "latency.png")),
             ("Sample frames", sample_grid(samples, out_dir / "samples.png"))]
    settings = "".join(f"<tr><th>{k}</th><td>{html_cell(summary.get(k))}</td></tr>" for k in (
        "bag", "topic", "ir_topic", "every", "mode", "checkpoint", "backend", "text_encoder", "tolerance_ms",
        "frames_in_bag", "frames", "paired", "unpaired", "undecodable", "damage", "recovered", "out_bag", "seconds"))
    mean = summary["mean"]
    assert isinstance(mean, dict)
    guesses_chart = bar_chart(guess_means(mean), out_dir / "pseudo_ir_chart.png", "Pseudo-IR vs the trivial guesses")
    latency = summary["latency_ms"]
    assert isinstance(latency, dict)
    latency_row = "".join(f"<td>{html_cell(v)}</td>" for v in latency.values())
    figures = "".join(f"<h2>{title}</h2><img src=\"{p.name}\" alt=\"{title}\">" for title, p in plots if p)
    damage = (f"<p><b>The bag is damaged:</b> {html.escape(str(summary['damage']))}; "
              "the frames before the damage were evaluated.</p>") if summary.get("damage") else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mnm bag-eval: {html.escape(str(summary['topic']))}</title>
<style>{REPORT_STYLE}</style></head><body>
<h1>mnm bag-eval — {html.escape(str(summary['topic']))}</h1>{damage}
<table>{settings}</table>
<h2>Fusion metrics (means)</h2>
<p>VIFB definitions (mode <code>{html.escape(str(summary['mode']))}</code>); CE, Qcb and the pseudo-IR scores need a
thermal partner. Per-frame values: <code>per_frame.csv</code>.</p>
{means_table({"model": {k: mean[k] for k in METRIC_KEYS}}, METRIC_KEYS)}
{pseudo_ir_section(mean, guesses_chart)}
<h2>Pipeline time per frame (ms)</h2>
<table><tr>{''.join(f'<th>{k}</th>' for k in latency)}</tr><tr>{latency_row}</tr></table>
{figures}
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


__all__ = ["latency_histogram", "metrics_over_time", "sample_grid", "write_bag_report"]
