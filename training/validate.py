"""Per-epoch validation of the stage-2 model on the held-out split, with the project's metrics.

Scores are averaged per scene group (day, night) and overall. The selection score weights the
warm-object AUC over SSIM, and day and night equally, because SSIM alone rewards a flat, dark
pseudo-IR on night scenes (DESIGN.md §5):

    val_score = mean over groups of (2·hotspot_auc + pseudo_ir_ssim) / 3
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import torch

from mnm_core.colour import crop_to, luminance, pad_to_multiple, rgb_to_ycbcr, ycbcr_to_rgb
from mnm_core.config import TextConfig
from mnm_core.guesses import pseudo_ir_comparison
from mnm_core.metrics import fused_image_scores, fusion_metrics
from mnm_core.model import VgiiModel
from mnm_core.pipeline import to_uint8
from mnm_core.working_size import to_frame_size, to_working_size
from training.data import PairedImage

FUSION_METRICS_AVAILABLE = importlib.util.find_spec("scipy") is not None
"""VIFB's fusion metrics need scipy; the pseudo-IR scores do not (the GPU machine has no scipy)."""
NIGHT_MEAN_Y = 0.25
"""A validation image whose mean visible luminance is below this counts as a night scene."""
FULL_FRAME = 1 << 14
"""`val_max_side` that keeps every frame whole (`--full-frames`)."""


def scene_group(y: np.ndarray) -> str:
    """'night' or 'day' from the visible luminance (H×W in [0, 1]); works for every data set alike."""
    return "night" if float(y.mean()) < NIGHT_MEAN_Y else "day"


def selection_score(scores: dict[str, float]) -> float:
    """val_score from grouped scores: day and night count equally, AUC twice as much as SSIM."""
    groups = [g for g in ("day", "night") if f"{g}/hotspot_auc" in scores]
    return float(np.mean([(2 * scores[f"{g}/hotspot_auc"] + scores[f"{g}/pseudo_ir_ssim"]) / 3 for g in groups]))


def _image_scores(model: VgiiModel, image: PairedImage, feature: torch.Tensor | None,
                  with_fusion: bool, max_side: int) -> tuple[dict[str, float], tuple[torch.Tensor, ...], str]:
    device = model.dictionary.device
    ycbcr = rgb_to_ycbcr(image.vis.astype(np.float32) / 255.0)
    y = np.ascontiguousarray(ycbcr[..., 0])
    y_work = to_working_size(y, max_side)
    gamma, beta = model.identity_modulation(1) if feature is None else model.modulation(feature.to(device))
    outputs = model(torch.from_numpy(pad_to_multiple(y_work))[None, None].to(device), gamma, beta)
    pseudo_ir, fused_y = (crop_to(out[0, 0].float().cpu().numpy(), *y_work.shape) for out in outputs)
    pseudo_ir, fused_y = to_frame_size(pseudo_ir, fused_y, y_work, y)
    scores = pseudo_ir_comparison(image.vis, image.ir, to_uint8(pseudo_ir))
    if with_fusion:
        fused = ycbcr.copy()
        fused[..., 0] = fused_y
        scores.update(fused_image_scores(image.vis, image.ir, to_uint8(ycbcr_to_rgb(fused))))
        # the visible image itself as the fused image: the baseline to beat (AG, EI, SF ≥ +10 %)
        visible = fusion_metrics(image.vis, image.ir, image.vis)
        scores.update({f"{name}_visible": value for name, value in visible.items()})
    ir = image.ir.astype(np.float32) / 255.0
    rows = tuple(torch.from_numpy(np.ascontiguousarray(a))[None, None] for a in (y, pseudo_ir, ir, fused_y))
    return scores, rows, scene_group(y)


@torch.no_grad()
def validate(model: VgiiModel, images: list[PairedImage], text_features: torch.Tensor | None,
             with_fusion: bool = True, max_side: int = 0) -> tuple[dict[str, float], list[torch.Tensor]]:
    """Mean scores over `images`, overall and per group ('day/…', 'night/…'), plus `val_score`.

    Pseudo-IR PSNR/SSIM and hotspot_auc, the same for the two trivial guesses (visible Y and 1 − Y),
    and with `with_fusion` the six VIFB metrics of the colour fused image. Images of any size; the model
    runs as the pipeline does, at most `max_side` pixels on the long side (`PipelineConfig.max_side`,
    0 = each image's own size). Also returns, for the first four images of the first image's size, grid
    rows (visible Y, pseudo-IR, real IR, fused Y) for TensorBoard.
    """
    per_group: dict[str, dict[str, list[float]]] = {"all": {}, "day": {}, "night": {}}
    rows: list[list[torch.Tensor]] = [[], [], [], []]
    for i, image in enumerate(images):
        feature = None if text_features is None else text_features[i:i + 1]
        scores, tensors, group = _image_scores(model, image, feature, with_fusion, max_side)
        for name, value in scores.items():
            for key in ("all", group):
                per_group[key].setdefault(name, []).append(value)
        if len(rows[0]) < 4 and image.ir.shape == images[0].ir.shape:
            for row, tensor in zip(rows, tensors):
                row.append(tensor)
    result: dict[str, float] = {}
    for group, totals in per_group.items():
        prefix = "" if group == "all" else f"{group}/"
        result.update({prefix + name: float(np.nanmean(values)) for name, values in totals.items()})
    result["val_score"] = selection_score(result)
    return result, [torch.cat(row) for row in rows if row]


def checkpoint_text_encoder(info) -> str:
    """The text encoder a checkpoint was trained with, by name ('none' for a text-free model)."""
    return info.text_encoder.split(":")[0] or "none"


@dataclasses.dataclass
class ValidationSplit:
    """A training YAML's held-out pairs and what scoring them as its run does needs."""

    images: list[PairedImage]
    text: TextConfig
    thumb_size: int
    """Side of the thumbnails prompts are written from (train.text_thumb_size)."""
    working_side: int
    """The run's validation working size (data.val_working_side)."""


def validation_split(config_path: str, full_frames: bool = False) -> ValidationSplit:
    """The held-out split of a training YAML, every pair whole with `full_frames`."""
    from training.train import load_config, load_data

    train_config, data_config, text_config = load_config(config_path)
    if full_frames:
        data_config = dataclasses.replace(data_config, val_images=0, val_max_side=FULL_FRAME)
    _, val_images = load_data(data_config)
    return ValidationSplit(val_images, text_config, train_config.text_thumb_size, data_config.val_working_side)


def validation_features(model: VgiiModel, text_encoder: str, split: ValidationSplit) -> torch.Tensor | None:
    """The split's prompts as `model` writes them, encoded by `text_encoder` (None for 'none': the
    identity modulation)."""
    from training.text_features import compute_features, create_text_encoder

    text = dataclasses.replace(split.text, encoder=text_encoder)
    encoder = create_text_encoder(text, model.config.text_dim)
    return None if encoder is None else compute_features(model, split.images, encoder, text, split.thumb_size).features


def score_model(model: VgiiModel, text_encoder: str, split: ValidationSplit) -> dict[str, float]:
    """`validate` scores (no fusion metrics) of `model` at the split's working size, as its training run
    scores its checkpoints."""
    features = validation_features(model, text_encoder, split)
    return validate(model, split.images, features, with_fusion=False, max_side=split.working_side)[0]


def main(argv: list[str] | None = None) -> int:
    """Score checkpoints on a training config's validation split: one Markdown row per checkpoint,
    working size and group."""
    import argparse

    from mnm_core.checkpoint import load_model

    parser = argparse.ArgumentParser(description="python -m training.validate --config CFG --checkpoint A [B ...]")
    parser.add_argument("--config", required=True, help="training YAML whose validation split to score on")
    parser.add_argument("--checkpoint", nargs="+", required=True, help="stage-2 checkpoints to compare")
    parser.add_argument("--max-side", type=int, nargs="+", default=[0], metavar="PX",
                        help="working sizes to score each checkpoint at (PipelineConfig.max_side; 0 = own size)")
    parser.add_argument("--full-frames", action="store_true",
                        help="every held-out pair of the split, whole (not data.val_images centre crops)")
    parser.add_argument("--text-off", action="store_true",
                        help="score under the identity modulation (γ = 1, β = 0), as `mnm eval --text-encoder none`")
    args = parser.parse_args(argv)
    split = validation_split(args.config, args.full_frames)
    keys = ("pseudo_ir_ssim", "hotspot_auc", "pseudo_ir_ssim_inv_vis_y", "hotspot_auc_inv_vis_y",
            "pseudo_ir_ssim_vis_y", "hotspot_auc_vis_y")
    groups = [scene_group(luminance(im.vis.astype(np.float32) / 255.0)) for im in split.images]
    print("| checkpoint | max_side | group | n | " + " | ".join(keys) + " | val_score |")
    print("|---" * (len(keys) + 5) + "|")
    for path in args.checkpoint:
        model, info = load_model(path)
        model = model.float().eval()
        encoder_name = "none" if args.text_off else checkpoint_text_encoder(info)
        features = validation_features(model, encoder_name, split)
        label = f"{path} (text off)" if args.text_off else str(path)
        for max_side in args.max_side:
            scores, _ = validate(model, split.images, features, with_fusion=False, max_side=max_side)
            for group, prefix in (("all", ""), ("day", "day/"), ("night", "night/")):
                if prefix + keys[0] not in scores:  # a split without frames of this group
                    continue
                n = len(groups) if group == "all" else groups.count(group)
                row = " | ".join(f"{scores[prefix + k]:.3f}" for k in keys)
                print(f"| {label} | {max_side} | {group} | {n} | {row} | {scores['val_score']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
