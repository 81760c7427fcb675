"""Stage 1, JSRL: joint shared-dictionary representation learning (Algorithm 1, DESIGN.md §1).

An unfolded convolutional dictionary learning network in the style of DCDicL. For each modality m
(vis, ir) HeadNet gives S₀; D₀ = 0; then for each of N stages t:

    S'   = CSB(I_m, D_{t−1}, S_{t−1}; μ_S,t)          closed-form Fourier solve
    S_t  = CoeNet(S', β_S,t)                          residual U-Net proximal step
    D'   = DSB({(S_t,m, I_m)}_m, D_{t−1}; μ_D,t)      ridge least squares over batch and modalities
    D_t  = DicNet(D', β_D,t)

and the reconstruction of each modality is Ĩ_m = D_N ⋆ S_N,m. HypNet maps σ to the positive
per-stage weights (μ_S, μ_D, β_S, β_D).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnm_core.config import ModelConfig
from mnm_core.dictionary import (
    DictionaryStatistics,
    csb_solve,
    dsb_solve_batch,
    synthesize,
)
from mnm_core.model.blocks import ConvStack, UNet, constant_channel, conv3x3

MODALITIES = ("vis", "ir")


class HeadNet(ConvStack):
    """Image B×1×H×W → initial coefficients S₀, B×K×H×W."""

    def __init__(self, n_atoms: int, width: int) -> None:
        super().__init__(1, width, n_atoms, depth=3)


class HypNet(nn.Module):
    """σ (noise/scale level, 0 when unused) → per-stage positive weights, N×4: μ_S, μ_D, β_S, β_D."""

    def __init__(self, n_stages: int, width: int) -> None:
        super().__init__()
        self.n_stages = n_stages
        self.mlp = nn.Sequential(nn.Linear(1, width), nn.ReLU(inplace=True), nn.Linear(width, 4 * n_stages))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.mlp(sigma.reshape(1, 1))).reshape(self.n_stages, 4) + 1e-4


class CoeNet(nn.Module):
    """Proximal step on coefficients: S ← S + U-Net([S, β])."""

    def __init__(self, n_atoms: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.unet = UNet(n_atoms + 1, n_atoms, widths)

    def forward(self, coeffs: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return coeffs + self.unet(torch.cat([coeffs, constant_channel(coeffs, beta)], dim=1))


class DicNet(nn.Module):
    """Dictionary refinement: each atom, with β as a second channel, through a small residual CNN."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(conv3x3(2, width), nn.ReLU(inplace=True), conv3x3(width, width),
                                 nn.ReLU(inplace=True), conv3x3(width, 1))

    def forward(self, dictionary: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        atoms = dictionary.unsqueeze(1)  # K×1×k×k
        return dictionary + self.net(torch.cat([atoms, constant_channel(atoms, beta)], dim=1)).squeeze(1)


@dataclass
class JsrlOutput:
    """What one JSRL forward pass gives: the batch dictionary, coefficients and reconstructions."""

    dictionary: torch.Tensor
    """D_N, K×k×k."""
    coeffs: dict[str, torch.Tensor]
    """S_N per modality, B×K×H×W."""
    reconstructions: dict[str, torch.Tensor]
    """Ĩ = D_N ⋆ S_N per modality, B×1×H×W."""


class JsrlModel(nn.Module):
    """The unfolded JSRL network. Images are B×1×H×W luminance in [0, 1], H and W multiples of 8."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.heads = nn.ModuleDict({m: HeadNet(config.n_atoms, config.head_width) for m in MODALITIES})
        self.hypnet = HypNet(config.n_stages, config.hyp_width)
        self.coenet = CoeNet(config.n_atoms, config.widths)
        self.dicnet = DicNet(config.dicnet_width)

    def stage_weights(self, sigma: float = 0.0) -> torch.Tensor:
        """N×4 positive weights (μ_S, μ_D, β_S, β_D) for noise level σ."""
        device = self.hypnet.mlp[0].weight.device
        return self.hypnet(torch.tensor([sigma], device=device))

    def _initial_dictionary(self, like: torch.Tensor) -> torch.Tensor:
        k = self.config.atom_size
        return like.new_zeros(self.config.n_atoms, k, k)

    def forward(self, vis: torch.Tensor, ir: torch.Tensor, sigma: float = 0.0) -> JsrlOutput:
        images = {"vis": vis, "ir": ir}
        coeffs = {m: self.heads[m](images[m]) for m in MODALITIES}
        dictionary = self._initial_dictionary(vis)
        for mu_s, mu_d, beta_s, beta_d in self.stage_weights(sigma):
            coeffs = {m: self.coenet(csb_solve(images[m], dictionary, coeffs[m], mu_s), beta_s)
                      for m in MODALITIES}
            pairs = [(coeffs[m], images[m]) for m in MODALITIES]
            dictionary = self.dicnet(dsb_solve_batch(pairs, self.config.atom_size, mu_d, dictionary), beta_d)
        recon = {m: synthesize(dictionary, coeffs[m]) for m in MODALITIES}
        return JsrlOutput(dictionary, coeffs, recon)

    def encode(self, image: torch.Tensor, modality: str, dictionary: torch.Tensor) -> torch.Tensor:
        """Coefficients of one modality under a fixed (dataset-level) dictionary: the stage-2 teacher.

        The stages run as in training, with the frozen D standing in for the batch dictionaries
        D_1..D_{N−1} (stage 1 always starts from D₀ = 0).
        """
        coeffs = self.heads[modality](image)
        current = self._initial_dictionary(image)
        for mu_s, _, beta_s, _ in self.stage_weights():
            coeffs = self.coenet(csb_solve(image, current, coeffs, mu_s), beta_s)
            current = dictionary
        return coeffs

    @torch.no_grad()
    def accumulate_statistics(self, statistics: DictionaryStatistics, vis: torch.Tensor,
                              ir: torch.Tensor) -> None:
        """Add one batch of both modalities to the dataset-level DSB statistics."""
        output = self(vis, ir)
        for m, image in (("vis", vis), ("ir", ir)):
            statistics.add(output.coeffs[m], image)

    @torch.no_grad()
    def dataset_dictionary(self, statistics: DictionaryStatistics) -> torch.Tensor:
        """The shared dictionary: DSB on the accumulated statistics, then DicNet (last stage's μ_D, β_D)."""
        _, mu_d, _, beta_d = self.stage_weights()[-1]
        solved = statistics.solve(float(mu_d)).to(beta_d.dtype)
        return self.dicnet(solved, beta_d)
