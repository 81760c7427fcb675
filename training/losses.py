"""Training losses: SSIM, gradients, and the objectives of stage 1, the pseudo-IR stage and the fusion stage."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mnm_core.model.jsrl import MODALITIES, JsrlOutput


@dataclass
class PseudoIrOutput:
    """What the pseudo-IR stage's loss needs of one forward pass (all B×·×H×W, fp32)."""

    coeffs_pir: torch.Tensor
    pseudo_ir: torch.Tensor
    vis_recon: torch.Tensor
    """D ⋆ REN(y): keeps the visible coefficients a faithful code of the image."""

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


def sobel(image: torch.Tensor) -> torch.Tensor:
    """(∂x, ∂y) by Sobel filters, replicate border: B×1×H×W → B×2×H×W."""
    kx = _SOBEL.to(image)[None, None]
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, torch.cat([kx, kx.transpose(-1, -2)]))


def gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """|∂x| + |∂y| by Sobel filters, replicate border, B×1×H×W."""
    return sobel(image).abs().sum(dim=1, keepdim=True)


def jsrl_loss(output: JsrlOutput, vis: torch.Tensor, ir: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stage 1: L1 reconstruction of both modalities through the shared batch dictionary."""
    images = {"vis": vis, "ir": ir}
    terms = {f"recon_{m}": (output.reconstructions[m] - images[m]).abs().mean() for m in MODALITIES}
    terms["total"] = sum(terms.values())
    return terms


def warm_ranking_loss(pseudo_ir: torch.Tensor, ir: torch.Tensor, warm_fraction: float = 0.05,
                      samples: int = 128, temperature: float = 0.05) -> torch.Tensor:
    """A smooth surrogate of 1 − hotspot_auc: per crop, the real IR's warmest `warm_fraction` of pixels
    should score above the others in the pseudo-IR.

    For each crop, `samples` warm and `samples` other pixels are drawn (torch's global generator, so a
    resumed run draws the same) and every warm/other pair costs τ·softplus((p_other − p_warm)/τ), which
    is ≈ max(0, p_other − p_warm) and smooth near 0. Crops whose IR is flat add nothing.
    """
    pseudo_flat, ir_flat = pseudo_ir.flatten(1), ir.flatten(1)
    warm = ir_flat >= torch.quantile(ir_flat, 1.0 - warm_fraction, dim=1, keepdim=True)
    usable = warm.any(dim=1) & ~warm.all(dim=1)
    if not bool(usable.any()):
        return pseudo_ir.sum() * 0.0
    warm, scores = warm[usable].float(), pseudo_flat[usable]
    warm_scores = scores.gather(1, torch.multinomial(warm, samples, replacement=True))
    other_scores = scores.gather(1, torch.multinomial(1.0 - warm, samples, replacement=True))
    margins = (other_scores[:, None, :] - warm_scores[:, :, None]) / temperature
    return F.softplus(margins).mean() * temperature


def pseudo_ir_loss(out: PseudoIrOutput, vis: torch.Tensor, ir: torch.Tensor, teacher_ir: torch.Tensor | None,
                   weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Pseudo-IR stage: what the official code trains the pseudo-IR network with, and nothing of fusion.

    `weights` maps w_coeff, w_recon, w_pixel, w_warm, w_ssim, w_ir_gradient, w_rank to floats. The pixel L1 is
    weighted by 1 + w_warm·IR, so warm objects count more than the large, cool background a flat output
    would match; the gradient term asks for the IR's edges, not a blur.
    The coefficient loss is relative to the teacher's energy, independent of the dictionary's scale.
    """
    terms: dict[str, torch.Tensor] = {}
    if teacher_ir is not None and weights["w_coeff"] > 0:
        terms["coeff"] = (out.coeffs_pir - teacher_ir).pow(2).mean() / teacher_ir.pow(2).mean().clamp_min(1e-8)
    terms["recon"] = (out.vis_recon - vis).abs().mean()
    terms["pixel"] = ((out.pseudo_ir - ir).abs() * (1.0 + weights["w_warm"] * ir)).mean()
    terms["ssim"] = 1.0 - ssim(out.pseudo_ir, ir)
    terms["ir_gradient"] = (sobel(out.pseudo_ir) - sobel(ir)).abs().mean()
    if weights["w_rank"] > 0:
        terms["rank"] = warm_ranking_loss(out.pseudo_ir, ir)
    terms["total"] = sum(weights[f"w_{name}"] * value for name, value in terms.items())
    return terms


def fusion_loss(fused_y: torch.Tensor, vis: torch.Tensor, ir: torch.Tensor,
                weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Fusion stage, unsupervised: intensity toward max(vis, IR), gradient toward the larger source
    gradient, SSIM to both sources, and (w_fused_rank > 0) the real IR's warm pixels ranked above the
    rest in the fused Y. `weights` maps w_intensity, w_gradient, w_fusion_ssim, w_fused_rank to floats."""
    terms: dict[str, torch.Tensor] = {}
    terms["intensity"] = (fused_y - torch.maximum(vis, ir)).abs().mean()
    target_grad = torch.maximum(gradient_magnitude(vis), gradient_magnitude(ir))
    terms["gradient"] = (gradient_magnitude(fused_y) - target_grad).abs().mean()
    terms["fusion_ssim"] = 1.0 - 0.5 * (ssim(fused_y, vis) + ssim(fused_y, ir))
    if weights["w_fused_rank"] > 0:
        terms["fused_rank"] = warm_ranking_loss(fused_y, ir)
    terms["total"] = sum(weights[f"w_{name}"] * value for name, value in terms.items())
    return terms
