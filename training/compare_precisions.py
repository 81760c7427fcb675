"""Accuracy of the fast path's precisions on the held-out validation split: fp32 vs int8 vs bf16.

    python -m training.compare_precisions [--checkpoint CKPT] [--config YAML] [--int8 FILE] [--threads N]

fp32 and int8 run in ONNX Runtime (the int8 file the runtime would use: the shipped one of these weights,
else one calibrated on the training sets into the cache; or `--int8 FILE`), bf16 in torch. Each scores the
pseudo-IR of every validation pair (every `val_every`-th pair of each training set, at most `val_images`
per set, centre-cropped: `training.train.load_data`) against the real IR with the evaluator's own
function (`mnm_core.guesses.pseudo_ir_comparison`), under the identity modulation (γ = 1, β = 0): the
language path is the same for every precision. Prints one Markdown table: SSIM, hotspot_auc and their
change from fp32, and the mean |Δ| of the pseudo-IR to fp32's in gray levels, per scene group.
Note: calibration draws 24 crops from the training sets' images, which include the held-out pairs;
it only sets activation ranges.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from mnm_core.backends import InferenceBackend, create_backend
from mnm_core.colour import rgb_to_ycbcr
from mnm_core.config import DataConfig
from mnm_core.guesses import pseudo_ir_comparison
from mnm_core.pipeline import to_uint8
from training.data import PairedImage
from training.validate import scene_group

PRECISIONS = (("fp32", "onnxruntime"), ("int8", "onnxruntime"), ("bf16", "torch"))
"""(precision, backend that runs it); fp32 is the reference."""
SCORES = ("pseudo_ir_ssim", "hotspot_auc")


def pseudo_irs(backend: InferenceBackend, images: list[PairedImage]) -> list[np.ndarray]:
    """The uint8 pseudo-IR of each image's visible Y under the identity modulation."""
    gamma = np.ones((1, backend.n_atoms), np.float32)
    beta = np.zeros((1, backend.n_atoms), np.float32)
    outputs = []
    for image in images:
        y = rgb_to_ycbcr(image.vis.astype(np.float32) / 255.0)[..., 0]
        pseudo_ir, _ = backend.run(np.ascontiguousarray(y)[None, None], gamma, beta)
        outputs.append(to_uint8(pseudo_ir[0, 0]))
    return outputs


def compare(outputs: dict[str, list[np.ndarray]], images: list[PairedImage]) -> list[dict[str, object]]:
    """Rows (precision, group, n, mean scores, change from fp32, mean |Δ| to fp32) from each precision's
    pseudo-IRs, for the groups 'all', 'day' and 'night' that have images."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        members["all"].append(index)
        members[scene_group(rgb_to_ycbcr(image.vis.astype(np.float32) / 255.0)[..., 0])].append(index)
    reference = outputs["fp32"]
    rows = []
    for precision, pseudo in outputs.items():
        scores = [pseudo_ir_comparison(im.vis, im.ir, p) for im, p in zip(images, pseudo)]
        gaps = [float(np.abs(p.astype(np.float32) - r).mean()) for p, r in zip(pseudo, reference)]
        for group in ("all", "day", "night"):
            chosen = members.get(group)
            if chosen:
                row: dict[str, object] = {"precision": precision, "group": group, "n": len(chosen),
                                          "mean_abs_diff": float(np.mean([gaps[i] for i in chosen]))}
                row.update({key: float(np.nanmean([scores[i][key] for i in chosen])) for key in SCORES})
                rows.append(row)
    fp32 = {row["group"]: row for row in rows if row["precision"] == "fp32"}
    for row in rows:
        row.update({f"delta_{key}": row[key] - fp32[row["group"]][key] for key in SCORES})
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    header = ("precision", "group", "n", "pseudo_ir_ssim", "Δ ssim", "hotspot_auc", "Δ auc",
              "mean abs Δ to fp32 (gray levels)")
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for r in rows:
        cells = (r["precision"], r["group"], r["n"], f"{r['pseudo_ir_ssim']:.4f}", f"{r['delta_pseudo_ir_ssim']:+.4f}",
                 f"{r['hotspot_auc']:.4f}", f"{r['delta_hotspot_auc']:+.4f}", f"{r['mean_abs_diff']:.2f}")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from mnm_core.checkpoint import load_model
    from training.train import load_config, load_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="", help="stage-2 checkpoint (default: the embedded default)")
    parser.add_argument("--config", default="", help="training YAML whose validation split to use "
                                                     "(default: the DataConfig defaults)")
    parser.add_argument("--int8", default="", help="int8 ONNX file to score (default: the one the runtime uses)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = the runtimes' defaults)")
    args = parser.parse_args(argv)
    data = load_config(args.config)[1] if args.config else DataConfig()
    _, images = load_data(data)
    model, _ = load_model(args.checkpoint or None)
    model = model.float().eval()
    outputs = {}
    for precision, name in PRECISIONS:
        options: dict[str, object] = {"onnx_path": args.int8} if precision == "int8" and args.int8 else {}
        backend = create_backend(name, model, precision=precision, threads=args.threads, **options)
        print(f"{precision}: {backend.describe()}, {len(images)} images", flush=True)
        outputs[precision] = pseudo_irs(backend, images)
    print(markdown(compare(outputs, images)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
