"""Fixed fusion rules scored like the fused image: what do AG, EI and SF reward?

    python -m training.fusion_rules --pseudo-ir runs/compare [--checkpoint fast] [--sets roadscene_test ...]
        [--data-root ../shared/data] [--limit N]

Reads the pseudo-IR images that `training.compare_models` wrote (PSEUDO_IR/SET/CHECKPOINT/pseudo_ir/NAME.png)
and, for each test pair, builds the fused luminance by a fixed rule from the visible Y and that pseudo-IR,
keeps the visible chroma (as the pipeline does) and scores it with `mnm_core.metrics.fused_image_scores`.
It prints one Markdown table: per set and rule, AG / EI / SF as % over the visible image (the issue's
target is ≥ +10 % each), Qcb beside the real-IR max(Y, IR) fusion's, and fused_hotspot_auc.

The rules are baselines for reading the fused-image targets, not candidates for the product:
`y + hp(pseudo-IR)` and `pyramid max-abs` add the pseudo-IR's detail, `max(y, pseudo-IR)` its heat, and
`unsharp ×1.3` sharpens the visible image without any infrared at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from mnm_core.errors import DataError
from mnm_core.evaluation.methods import fuse_real_ir
from mnm_core.metrics import fused_image_scores
from mnm_core.metrics.hotspot import float_gray
from mnm_core.pairs import find_pairs, load_pair, read_image
from training.compare_models import GAIN_KEYS, gain_pct, pct

Rule = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(visible Y, pseudo-IR), both H×W float in 0..255 → fused Y (clipped to 0..255 afterwards)."""

DETAIL_SIGMA = 2.0
"""Gaussian σ (px) that splits an image into base and detail for the detail rules."""


def detail(image: np.ndarray, sigma: float = DETAIL_SIGMA) -> np.ndarray:
    return image - gaussian_filter(image, sigma)


def pyramid_max_abs(y: np.ndarray, pseudo_ir: np.ndarray, levels: int = 3) -> np.ndarray:
    """Classic multi-scale fusion: per band (σ = 1, 2, 4) the detail of larger magnitude, the visible base."""
    fused = np.zeros_like(y)
    for level in range(levels):
        sigma = 2.0 ** level
        base_y, base_p = gaussian_filter(y, sigma), gaussian_filter(pseudo_ir, sigma)
        band_y, band_p = y - base_y, pseudo_ir - base_p
        fused += np.where(np.abs(band_p) > np.abs(band_y), band_p, band_y)
        y, pseudo_ir = base_y, base_p
    return fused + y


RULES: dict[str, Rule] = {
    "visible": lambda y, p: y,
    "y + hp(pseudo-IR)": lambda y, p: y + detail(p),
    "pyramid max-abs": pyramid_max_abs,
    "max(y, pseudo-IR)": np.maximum,
    "unsharp ×1.3 (no IR)": lambda y, p: y + 0.3 * detail(y),
}


def fuse_luminance(vis: np.ndarray, fused_y: np.ndarray) -> np.ndarray:
    """The visible image (uint8, gray or RGB) with its BT.601 Y replaced by `fused_y`, chroma kept."""
    change = np.clip(fused_y, 0.0, 255.0) - float_gray(vis)
    fused = vis.astype(np.float64) + (change if vis.ndim == 2 else change[..., None])
    return np.clip(np.floor(fused + 0.5), 0, 255).astype(np.uint8)


def score_set(data_dir: Path, pseudo_ir_dir: Path, limit: int | None) -> dict[str, list[dict[str, float]]]:
    """Per rule (and 'real-ir'), the fused-image scores of every pair that has a pseudo-IR image."""
    pairs, _ = find_pairs(data_dir)
    pairs = [pair for pair in pairs if (pseudo_ir_dir / f"{pair.name}.png").is_file()][:limit]
    if not pairs:
        raise DataError(f"no pseudo-IR image in {pseudo_ir_dir} matches a pair of {data_dir}")
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in (*RULES, "real-ir")}
    for pair in tqdm(pairs, desc=data_dir.name, unit="img"):
        loaded = load_pair(pair)
        vis, ir = loaded.vis, loaded.ir
        y, pseudo_ir = float_gray(vis), float_gray(read_image(pseudo_ir_dir / f"{pair.name}.png"))
        for name, rule in RULES.items():
            scores[name].append(fused_image_scores(vis, ir, fuse_luminance(vis, rule(y, pseudo_ir))))
        scores["real-ir"].append(fused_image_scores(vis, ir, fuse_real_ir(vis, ir).fused))
    return scores


def table(results: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    """The Markdown table of the module docstring."""
    lines = ["| set | rule | AG | EI | SF | Qcb (real-IR's) | fused_hotspot_auc |", "|---|---|---|---|---|---|---|"]
    for set_name, scores in results.items():
        means = {rule: {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
                 for rule, rows in scores.items()}
        visible = means["visible"]
        for rule in RULES:
            gains = " | ".join(pct(gain_pct(means[rule][key], visible[key])) for key in GAIN_KEYS)
            lines.append(f"| {set_name} ({len(scores[rule])}) | {rule} | {gains} | {means[rule]['Qcb']:.3f} "
                         f"({means['real-ir']['Qcb']:.3f}) | {means[rule]['fused_hotspot_auc']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pseudo-ir", type=Path, required=True, help="a training.compare_models --out folder")
    parser.add_argument("--checkpoint", default="fast", help="the checkpoint name used there")
    parser.add_argument("--sets", nargs="+", default=["roadscene_test", "tno_test", "msrs_test_128"])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs of each set")
    args = parser.parse_args(argv)
    results = {}
    for set_name in args.sets:
        try:
            results[set_name] = score_set(args.data_root / set_name,
                                          args.pseudo_ir / set_name / args.checkpoint / "pseudo_ir", args.limit)
        except DataError as exc:
            print(f"{set_name}: skipped, {exc}")
    print(table(results))
    return 0 if results else 2


if __name__ == "__main__":
    raise SystemExit(main())
