"""Pseudo-IR scores of the trivial guesses on a test set: the visible Y itself, and its inverse 1 − Y.

    python training/trivial_baselines.py ../shared/data/roadscene_test ../shared/data/tno_test

A trained pseudo-IR is only useful where it beats these on SSIM to the real IR; prints a Markdown table
of mean PSNR/SSIM per set (the same `pseudo_ir_scores` as `mnm eval`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from mnm_core.metrics import pseudo_ir_scores, rgb2gray  # noqa: E402
from training.data import find_pairs, read_pair  # noqa: E402


def trivial_scores(set_dir: Path) -> dict[str, dict[str, float]]:
    """Mean pseudo-IR PSNR/SSIM of 'visible Y' and '1 − Y' over every pair in `set_dir` (vis/ + ir/)."""
    totals: dict[str, list[dict[str, float]]] = {"visible Y": [], "1 − Y": []}
    for vis_path, ir_path in find_pairs(set_dir, "mnm"):
        pair = read_pair(vis_path, ir_path, set_dir.name)
        y = rgb2gray(pair.vis)
        totals["visible Y"].append(pseudo_ir_scores(y, pair.ir))
        totals["1 − Y"].append(pseudo_ir_scores((255 - y).astype(np.uint8), pair.ir))
    return {guess: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} for guess, rows in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", type=Path, help="test set folders with vis/ and ir/")
    args = parser.parse_args(argv)
    print("| set | guess | pseudo-IR PSNR (dB) | pseudo-IR SSIM |")
    print("|---|---|---|---|")
    for set_dir in args.sets:
        for guess, scores in trivial_scores(set_dir).items():
            print(f"| {set_dir.name} | {guess} | {scores['pseudo_ir_psnr']:.2f} | {scores['pseudo_ir_ssim']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
