"""The HTML report of `mnm eval`: mean tables, bar charts against the baselines and the trivial pseudo-IR
guesses, image grid; and the pieces the bag report shares (cells, style, the pseudo-IR table).

Self-contained apart from its images (thumbs/*.jpg and chart.png next to report.html), so the
output folder can be copied or served as it is.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from mnm_core.guesses import GUESSES, PSEUDO_IR_SCORES, guess_means
from mnm_core.metrics import HIGHER_IS_BETTER, METRIC_KEYS

THUMB_SIZE = 320
"""Longest side of the thumbnails in the image grid (pixels)."""
_COLOURS = {"model": "#d62728", "visible": "#7f7f7f", "real-ir": "#1f77b4", GUESSES["vis_y"]: "#bcbd22",
            GUESSES["inv_vis_y"]: "#17becf"}


def _thumbnail(image: np.ndarray, path: Path) -> None:
    import cv2

    scale = THUMB_SIZE / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image[..., ::-1] if image.ndim == 3 else image,
                               [cv2.IMWRITE_JPEG_QUALITY, 85])
    if ok:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded.tofile(path)


def write_thumbnails(out_dir: Path, name: str, vis: np.ndarray, ir: np.ndarray, fused: np.ndarray,
                     pseudo_ir: np.ndarray | None) -> dict[str, str]:
    """Write the grid's thumbnails of one pair; returns column → path relative to out_dir."""
    columns = {"name": name}
    for column, image in (("vis", vis), ("pseudo_ir", pseudo_ir), ("fused", fused), ("ir", ir)):
        if image is not None:
            relative = f"thumbs/{name}_{column}.jpg"
            _thumbnail(image, out_dir / relative)
            columns[column] = relative
    return columns


def bar_chart(means: dict[str, dict[str, float | None]], path: Path, title: str) -> Path | None:
    """One panel per metric, one bar per method (the evaluated method first); PNG at `path`.
    None (and no file) when no metric has a value."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    keys = [k for k in next(iter(means.values())) if any(m.get(k) is not None for m in means.values())]
    if not keys:
        return None
    columns = min(3 if len(keys) <= 6 else 4, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.8 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    names = list(means)
    for axis, key in zip(axes, keys):
        values = [means[n].get(key) for n in names]
        shown = [(n, v) for n, v in zip(names, values) if v is not None]
        bars = axis.bar([n for n, _ in shown], [v for _, v in shown],
                        color=[_COLOURS.get(n, "#2ca02c") for n, _ in shown])
        axis.bar_label(bars, fmt="%.3g", fontsize=8)
        axis.set_title(f"{key} ({'higher' if HIGHER_IS_BETTER.get(key, True) else 'lower'} is better)", fontsize=9)
        axis.tick_params(labelsize=8)
        axis.margins(y=0.15)
    for axis in axes[len(keys):]:
        axis.set_visible(False)
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    return path


def html_cell(value: object) -> str:
    """A table cell's text: floats to 4 decimals, NaN/inf/None as a dash, the rest escaped."""
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.4f}"
    return "—" if value is None else html.escape(str(value))


def means_table(means: dict[str, dict[str, float | None]], keys: tuple[str, ...]) -> str:
    """An HTML table of mean metrics: one row per method, one column per key (with its better direction)."""
    head = "".join(f"<th>{html.escape(k)} {'↑' if HIGHER_IS_BETTER.get(k, True) else '↓'}</th>" for k in keys)
    body = []
    for name, values in means.items():
        cells = "".join(f"<td>{html_cell(values.get(k))}</td>" for k in keys)
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"


PSEUDO_IR_NOTE = ("<p>The pseudo-IR against the real IR, beside two guesses that need no model: the visible Y "
                  "itself and 1 − Y. <code>hotspot_auc</code>: per image, the ROC AUC of the pseudo-IR at ranking "
                  "the real IR's warmest 5 % of pixels above the rest (0.5 = chance). A pseudo-IR is only worth "
                  "having where it beats both guesses on SSIM and on hotspot_auc.</p>")


def pseudo_ir_section(mean: dict[str, float | None], chart: Path | None) -> str:
    """The report section that puts the pseudo-IR (if any) beside the trivial guesses."""
    table = means_table(guess_means(mean), PSEUDO_IR_SCORES)
    image = f'<img src="{chart.name}" alt="bar chart of the pseudo-IR scores">' if chart else ""
    return f"<h2>Pseudo-IR vs trivial guesses</h2>{PSEUDO_IR_NOTE}{table}{image}"


def _grid(images: list[dict[str, str]], rows: list[dict[str, object]], keys: tuple[str, ...]) -> str:
    by_name = {str(r["name"]): r for r in rows}
    titles = {"vis": "visible", "pseudo_ir": "pseudo-IR", "fused": "fused", "ir": "real IR"}
    head = "".join(f"<th>{t}</th>" for t in titles.values())
    body = []
    for entry in images:
        name = entry["name"]
        cells = "".join(
            f'<td><img src="{html.escape(entry[c])}" alt="{t}" loading="lazy"></td>' if c in entry else "<td>—</td>"
            for c, t in titles.items())
        row = by_name.get(name, {})
        scores = "<br>".join(f"{html.escape(k)} {html_cell(row.get(k))}" for k in keys)
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}<td class=s>{scores}</td></tr>")
    return f"<table class=grid><tr><th>name</th>{head}<th>metrics</th></tr>{''.join(body)}</table>"


REPORT_STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:0.6em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f4f4f4}img{max-width:100%}
.grid img{max-width:240px;display:block}.grid td{text-align:center}.s{font-size:80%;text-align:left!important}
code{background:#f4f4f4;padding:0 3px}"""


def write_report(out_dir: Path, summary: dict[str, object], means: dict[str, dict[str, float | None]],
                 rows: list[dict[str, object]], images: list[dict[str, str]], keys: tuple[str, ...]) -> Path:
    """Write chart.png, pseudo_ir_chart.png and report.html into out_dir; returns the report's path."""
    chart = bar_chart({name: {k: values.get(k) for k in METRIC_KEYS} for name, values in means.items()},
                      out_dir / "chart.png", "Mean fusion metrics: method vs baselines")
    method_mean = means[str(summary["method"])]
    guesses_chart = bar_chart(guess_means(method_mean), out_dir / "pseudo_ir_chart.png",
                              "Pseudo-IR vs the trivial guesses")
    settings = "".join(
        f"<tr><th>{k}</th><td>{html_cell(summary.get(k))}</td></tr>"
        for k in ("method", "mode", "data", "checkpoint", "images", "seconds"))
    skipped = summary.get("skipped") or []
    skipped_html = "".join(f"<li><code>{html.escape(s['name'])}</code>: {html.escape(s['reason'])}</li>"
                           for s in skipped) or "<li>none</li>"  # type: ignore[index]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mnm eval: {html.escape(str(summary['method']))}</title>
<style>{REPORT_STYLE}</style></head><body>
<h1>mnm eval — {html.escape(str(summary['method']))}</h1>
<table>{settings}</table>
<h2>Fusion metrics (means)</h2>
<p>VIFB definitions (mode <code>{html.escape(str(summary['mode']))}</code>); CE lower is better, others higher.
<code>visible</code>: the visible image alone; <code>real-ir</code>: max(Y, real IR) fusion, an upper bound.</p>
{means_table(means, METRIC_KEYS)}
{f'<img src="{chart.name}" alt="bar chart of the mean metrics">' if chart else ""}
{pseudo_ir_section(method_mean, guesses_chart)}
<h2>Skipped ({len(skipped)})</h2><ul>{skipped_html}</ul>
<h2>Images</h2>
{_grid(images, rows, keys)}
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


__all__ = ["REPORT_STYLE", "THUMB_SIZE", "bar_chart", "html_cell", "means_table", "pseudo_ir_section", "write_report",
           "write_thumbnails"]
