"""Cheap per-epoch validation of the stage-2 model with the project's metrics (mnm_core.metrics)."""

from __future__ import annotations

import numpy as np
import torch

from mnm_core.colour import rgb_to_ycbcr, ycbcr_to_rgb
from mnm_core.metrics import fusion_metrics, pseudo_ir_scores
from mnm_core.model import VgiiModel
from mnm_core.pipeline import to_uint8
from training.data import PairedImage


@torch.no_grad()
def validate(model: VgiiModel, images: list[PairedImage],
             text_features: torch.Tensor | None) -> tuple[dict[str, float], list[torch.Tensor]]:
    """Mean VIFB metrics of the colour fused image and pseudo-IR PSNR/SSIM over `images`.

    `visible_y_ssim` is the SSIM of the trivial guess (the visible Y itself) to the real IR, for scale.

    Images must already be cropped to multiples of 8 (data.centre_crop). Returns the scores and, for
    the first four images, grid rows (visible Y, pseudo-IR, real IR, fused Y) for TensorBoard.
    """
    device = model.dictionary.device
    totals: dict[str, list[float]] = {}
    rows: list[list[torch.Tensor]] = [[], [], [], []]
    for i, image in enumerate(images):
        ycbcr = rgb_to_ycbcr(image.vis.astype(np.float32) / 255.0)
        y = torch.from_numpy(np.ascontiguousarray(ycbcr[..., 0]))[None, None].to(device)
        if text_features is None:
            gamma, beta = model.identity_modulation(1)
        else:
            gamma, beta = model.modulation(text_features[i:i + 1].to(device))
        pseudo_ir, fused_y = model(y, gamma, beta)
        fused = ycbcr.copy()
        fused[..., 0] = fused_y[0, 0].cpu().numpy()
        scores = fusion_metrics(image.vis, image.ir, to_uint8(ycbcr_to_rgb(fused)))
        scores.update(pseudo_ir_scores(to_uint8(pseudo_ir[0, 0].cpu().numpy()), image.ir))
        scores["visible_y_ssim"] = pseudo_ir_scores(to_uint8(ycbcr[..., 0]), image.ir)["pseudo_ir_ssim"]
        for name, value in scores.items():
            totals.setdefault(name, []).append(value)
        if i < 4 and image.ir.shape == images[0].ir.shape:
            ir = torch.from_numpy(image.ir.astype(np.float32) / 255.0)[None, None]
            for row, tensor in zip(rows, (y, pseudo_ir, ir, fused_y)):
                row.append(tensor.cpu())
    scores = {name: float(np.nanmean(values)) for name, values in totals.items()}
    return scores, [torch.cat(row) for row in rows if row]
