"""Training losses: SSIM, gradients, and the stage-1 / stage-2 objectives (DESIGN.md §1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mnm_core.model.jsrl import MODALITIES, JsrlOutput
from mnm_core.model.vgii import FastPathOutput

_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Mean SSIM of two B×1×H×W images in [0, 1] (Gaussian window, σ = 1.5, valid region)."""
    w = _gaussian_window(window).to(a)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean()


def gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """|∂x| + |∂y| by Sobel filters, replicate border, B×1×H×W."""
    kx = _SOBEL.to(image)[None, None]
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kx).abs() + F.conv2d(padded, kx.transpose(-1, -2)).abs()


def jsrl_loss(output: JsrlOutput, vis: torch.Tensor, ir: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stage 1: L1 reconstruction of both modalities through the shared batch dictionary."""
    images = {"vis": vis, "ir": ir}
    terms = {f"recon_{m}": (output.reconstructions[m] - images[m]).abs().mean() for m in MODALITIES}
    terms["total"] = sum(terms.values())
    return terms


def vgii_loss(out: FastPathOutput, vis: torch.Tensor, ir: torch.Tensor, teacher_ir: torch.Tensor | None,
              vis_recon: torch.Tensor, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Stage 2: teacher coefficients, pseudo-IR pixel + SSIM, and the unsupervised fusion loss.

    `weights` maps w_coeff, w_recon, w_pixel, w_ssim, w_intensity, w_gradient, w_fusion_ssim to floats;
    `vis_recon` is D ⋆ REN(y). The coefficient loss is relative to the teacher's energy, so it does not
    depend on the scale of the dictionary.
    """
    terms: dict[str, torch.Tensor] = {}
    if teacher_ir is not None and weights["w_coeff"] > 0:
        terms["coeff"] = (out.coeffs_pir - teacher_ir).pow(2).mean() / teacher_ir.pow(2).mean().clamp_min(1e-8)
    terms["recon"] = (vis_recon - vis).abs().mean()
    terms["pixel"] = (out.pseudo_ir - ir).abs().mean()
    terms["ssim"] = 1.0 - ssim(out.pseudo_ir, ir)
    terms["intensity"] = (out.fused_y - torch.maximum(vis, ir)).abs().mean()
    target_grad = torch.maximum(gradient_magnitude(vis), gradient_magnitude(ir))
    terms["gradient"] = (gradient_magnitude(out.fused_y) - target_grad).abs().mean()
    terms["fusion_ssim"] = 1.0 - 0.5 * (ssim(out.fused_y, vis) + ssim(out.fused_y, ir))
    terms["total"] = sum(weights[f"w_{name}"] * value for name, value in terms.items())
    return terms
