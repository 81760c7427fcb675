"""Accuracy of the fast path's precisions: fp32 vs int8 vs bf16, under the identity and the text modulation.

    python -m training.compare_precisions [--checkpoint CKPT] [--config YAML] [--sets SET ...]
                                          [--modulation identity text] [--precisions fp32 int8 bf16]
                                          [--int8 FILE] [--threads N]

fp32 and int8 run in ONNX Runtime (the int8 file the runtime would use: the shipped one of these weights,
else one calibrated on the training sets into the cache; or `--int8 FILE`), bf16 in torch. Each scores the
pseudo-IR against the real IR with the evaluator's own function (`mnm_core.guesses.pseudo_ir_comparison`)
on the held-out validation split (every `val_every`-th pair of each training set, at most `val_images` per
set, centre-cropped: `training.train.load_data`; grouped all / day / night) and on each `--sets` folder
under the data root (the test sets, whole images). Modulations: `identity` (γ = 1, β = 0: before the first
text result) and `text` (each image's own modulation from the node's slow path with the checkpoint's
encoder, computed once and fed to every precision). Prints one Markdown table: SSIM, hotspot_auc, their
change from fp32, and the mean |Δ| of the pseudo-IR to fp32's in gray levels.
Note: calibration draws 24 crops from the training sets' images, which include the held-out pairs;
it only sets activation ranges.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from mnm_core.backends import InferenceBackend, create_backend
from mnm_core.colour import crop_to, pad_to_multiple, rgb_to_ycbcr
from mnm_core.config import DataConfig
from mnm_core.guesses import pseudo_ir_comparison
from mnm_core.modulation import Modulation
from mnm_core.pipeline import to_uint8
from training.data import PairedImage
from training.validate import scene_group

PRECISIONS = (("fp32", "onnxruntime"), ("int8", "onnxruntime"), ("bf16", "torch"))
"""(precision, backend that runs it); fp32 is the reference."""
SCORES = ("pseudo_ir_ssim", "hotspot_auc")


def pseudo_irs(backend: InferenceBackend, images: list[PairedImage], modulations: list[Modulation]) -> list[np.ndarray]:
    """The uint8 pseudo-IR of each image's visible Y under its modulation (padded to the size multiple)."""
    outputs = []
    for image, modulation in zip(images, modulations):
        y = rgb_to_ycbcr(image.vis.astype(np.float32) / 255.0)[..., 0]
        pseudo_ir, _ = backend.run(np.ascontiguousarray(pad_to_multiple(y))[None, None], modulation.gamma,
                                   modulation.beta)
        outputs.append(to_uint8(crop_to(pseudo_ir[0, 0], *y.shape)))
    return outputs


def compare(outputs: dict[str, list[np.ndarray]], images: list[PairedImage],
            groups: dict[str, list[int]]) -> list[dict[str, object]]:
    """Rows (precision, group, n, mean scores, change from fp32, mean |Δ| to fp32) from each precision's
    pseudo-IRs, for each group of image indices."""
    reference = outputs["fp32"]
    rows = []
    for precision, pseudo in outputs.items():
        scores = [pseudo_ir_comparison(im.vis, im.ir, p) for im, p in zip(images, pseudo)]
        gaps = [float(np.abs(p.astype(np.float32) - r).mean()) for p, r in zip(pseudo, reference)]
        for group, chosen in groups.items():
            row: dict[str, object] = {"precision": precision, "group": group, "n": len(chosen),
                                      "mean_abs_diff": float(np.mean([gaps[i] for i in chosen]))}
            row.update({key: float(np.nanmean([scores[i][key] for i in chosen])) for key in SCORES})
            rows.append(row)
    fp32 = {row["group"]: row for row in rows if row["precision"] == "fp32"}
    for row in rows:
        row.update({f"delta_{key}": row[key] - fp32[row["group"]][key] for key in SCORES})
    return rows


def validation_groups(images: list[PairedImage], offset: int = 0) -> dict[str, list[int]]:
    """'val' and 'val day' / 'val night' (where they have images) → indices (shifted by `offset`)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        groups["val"].append(offset + index)
        groups["val " + scene_group(rgb_to_ycbcr(image.vis.astype(np.float32) / 255.0)[..., 0])].append(offset + index)
    return dict(groups)


def markdown(rows: list[dict[str, object]]) -> str:
    header = ("modulation", "precision", "images", "n", "pseudo_ir_ssim", "Δ ssim", "hotspot_auc", "Δ auc",
              "mean abs Δ to fp32 (gray levels)")
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * (len(header) - 3)]
    for r in rows:
        cells = (r["modulation"], r["precision"], r["group"], r["n"], f"{r['pseudo_ir_ssim']:.4f}",
                 f"{r['delta_pseudo_ir_ssim']:+.4f}", f"{r['hotspot_auc']:.4f}", f"{r['delta_hotspot_auc']:+.4f}",
                 f"{r['mean_abs_diff']:.2f}")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def image_modulations(model, info, images: list[PairedImage], kind: str) -> list[Modulation]:
    """Each image's modulation: the identity, or its text modulation from the node's slow path (the
    identity where the checkpoint has no text or a refresh failed, as the node would run then)."""
    from mnm_core.pipeline import text_config_for
    from mnm_core.text import frame_modulations

    identity = Modulation.identity(model.config.n_atoms)
    text = text_config_for(info.text_encoder)
    if kind == "identity" or text.encoder == "none":
        return [identity] * len(images)
    found = frame_modulations(model, [im.vis.astype(np.float32) / 255.0 for im in images], text)
    return [modulation or identity for modulation in found]


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from mnm_core.checkpoint import load_model
    from training.data import load_sets
    from training.train import load_config, load_data, resolve_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="", help="stage-2 checkpoint (default: the embedded default)")
    parser.add_argument("--config", default="", help="training YAML whose validation split and data root to use "
                                                     "(default: the DataConfig defaults)")
    parser.add_argument("--sets", nargs="*", default=[], help="test-set folders under the data root to score too "
                                                              "(e.g. roadscene_test tno_test msrs_test_128)")
    parser.add_argument("--modulation", nargs="+", choices=("identity", "text"), default=["identity", "text"],
                        help="modulations to score under (default: both)")
    names = [precision for precision, _ in PRECISIONS]
    parser.add_argument("--precisions", nargs="+", choices=names, default=names,
                        help="precisions to score (fp32, the reference, always runs; bf16 is emulated, hence slow, "
                             "on CPUs without AVX-512 BF16 or AMX)")
    parser.add_argument("--int8", default="", help="int8 ONNX file to score (default: the one the runtime uses)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = the runtimes' defaults)")
    args = parser.parse_args(argv)
    data = load_config(args.config)[1] if args.config else DataConfig()
    _, images = load_data(data)
    groups = validation_groups(images)
    for name in args.sets:
        pairs = load_sets(resolve_path(data.root), (name,), data.layout)
        groups[name] = list(range(len(images), len(images) + len(pairs)))
        images += pairs
    model, info = load_model(args.checkpoint or None)
    model = model.float().eval()
    backends = {}
    for precision, name in PRECISIONS:
        if precision != "fp32" and precision not in args.precisions:
            continue
        options: dict[str, object] = {"onnx_path": args.int8} if precision == "int8" and args.int8 else {}
        backends[precision] = create_backend(name, model, precision=precision, threads=args.threads, **options)
        print(f"{precision}: {backends[precision].describe()}", flush=True)
    rows = []
    for kind in args.modulation:
        modulations = image_modulations(model, info, images, kind)
        outputs = {precision: pseudo_irs(backend, images, modulations)
                   for precision, backend in tqdm(backends.items(), desc=f"{kind}: precisions")}
        rows += [{"modulation": kind, **row} for row in compare(outputs, images, groups)]
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
