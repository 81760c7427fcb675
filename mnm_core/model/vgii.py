"""Stage 2, VGII + AFRI: visible-guided IR inference and adaptive fusion (Algorithm 2, DESIGN.md §1).

With the shared dictionary D frozen (a buffer, a constant in the exported graph):

    S̃_vis  = REN(I_vis)                         LISTA: S ← S − η·Dᵀ⋆(D⋆S − I), then S ← S + CNN(S)
    S_pir⁰ = RIN(S̃_vis),  I_pir⁰ = Tail(S_pir⁰)  the initial pseudo-IR (slow path, for the prompt)
    γ, β   = Φγ(F), Φβ(F)                       F the standardised text feature; identity at init
    S_pir¹ = RIN(γ ⊙ S̃_vis + β)
    fusion rule 'residual' (the presets):
    W_vis, W_pir = 2·σ(Ψ([S̃_vis, S_pir¹]))     per pixel and atom, each in (0, 2) on its own
    I_f    = y + D ⋆ ((W_vis − 1) ⊙ S̃_vis + W_pir ⊙ S_pir¹)    the visible image plus a change of its code
    fusion rule 'convex' (DESIGN.md §1; checkpoints written before the rule existed):
    W_vis, W_pir = softmax(Ψ([S̃_vis, S_pir¹]))  per pixel and atom, over the two sources
    I_f    = D ⋆ (W_vis ⊙ S̃_vis + W_pir ⊙ S_pir¹)       plain synthesis: TailNet's refinement is the pseudo-IR's

The fast path (every frame) is `forward(y, gamma, beta) → (pseudo_ir, fused_y)`; the slow path is
`initial_pseudo_ir(y)` and `modulation(text_feature)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mnm_core.config import FusionRule, ModelConfig
from mnm_core.dictionary import synthesize, synthesize_adjoint, transfer_function
from mnm_core.model.blocks import ConvStack, UNet


class Ren(nn.Module):
    """Visible image → visible coefficients under the frozen D, by unrolled LISTA (conv ops only)."""

    def __init__(self, n_atoms: int, width: int, steps: int) -> None:
        super().__init__()
        self.init = ConvStack(1, width, n_atoms, depth=2)
        self.step_sizes = nn.Parameter(torch.ones(steps))
        self.refine = nn.ModuleList(ConvStack(n_atoms, width, n_atoms, depth=2) for _ in range(steps))

    def forward(self, image: torch.Tensor, dictionary: torch.Tensor, step_scale: torch.Tensor) -> torch.Tensor:
        coeffs = self.init(image)
        for eta, refine in zip(self.step_sizes, self.refine):
            residual = synthesize(dictionary, coeffs) - image
            coeffs = coeffs - eta * step_scale * synthesize_adjoint(dictionary, residual)
            coeffs = coeffs + refine(coeffs)
        return coeffs


class Rin(nn.Module):
    """Visible coefficients → infrared coefficients: S + U-Net(S).

    With stride s > 1 the U-Net's correction is computed on an s-times smaller grid (a learned s×s
    patch embedding in, a transposed one out) while the identity path keeps S at full resolution: the
    inferred IR changes smoothly (IR cameras see blurred heat, not texture), so the expensive part
    needs no full-resolution pixels. This is the `fast` preset's main saving.
    """

    def __init__(self, n_atoms: int, widths: tuple[int, ...], stride: int = 1) -> None:
        super().__init__()
        coarse = stride > 1
        self.down = nn.Conv2d(n_atoms, widths[0], stride, stride=stride) if coarse else None
        self.unet = UNet(widths[0], widths[0], widths) if coarse else UNet(n_atoms, n_atoms, widths)
        self.up = nn.ConvTranspose2d(widths[0], n_atoms, stride, stride=stride) if coarse else None

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        if self.down is None:
            return coeffs + self.unet(coeffs)
        return coeffs + self.up(self.unet(self.down(coeffs)))


class TailNet(nn.Module):
    """Synthesis D ⋆ S, then an optional light residual refinement, clipped to [0, 1].

    The refinement is the pseudo-IR's (trained with the pseudo-IR losses, it smooths as IR images are
    smooth); the fused image is the plain synthesis, so it keeps the visible image's detail.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.refine = ConvStack(1, width, 1, depth=2) if width > 0 else None

    def forward(self, coeffs: torch.Tensor, dictionary: torch.Tensor, refined: bool = True) -> torch.Tensor:
        image = synthesize(dictionary, coeffs)
        if refined and self.refine is not None:
            image = image + self.refine(image)
        return image.clamp(0.0, 1.0)


class Gate(nn.Module):
    """Ψ: [S̃_vis, S_pir] → weight maps W_vis, W_pir, per pixel and atom (see the fusion rules above).

    'convex': a two-way softmax, W_vis + W_pir = 1. 'residual': each weight 2·σ(logit) in (0, 2) on its
    own, so the gate can add the pseudo-IR's heat on top of the visible detail (W_vis ≈ 1, W_pir > 0)
    and strengthen detail atoms (W_vis > 1); a fresh one starts at W_vis = 1, W_pir ≈ 0.1.
    """

    FREE_MAX = 2.0
    FREE_INIT_PIR = 0.1
    """W_pir of a fresh 'residual' gate: a little heat on the visible image, from which training moves."""

    def __init__(self, n_atoms: int, width: int, rule: FusionRule = "convex") -> None:
        super().__init__()
        self.rule = rule
        self.net = ConvStack(2 * n_atoms, width, 2 * n_atoms, depth=3)
        if rule == "residual":
            last = self.net[-1]
            last.weight.data.mul_(0.1)
            nn.init.zeros_(last.bias)
            nn.init.constant_(last.bias[n_atoms:], math.log(self.FREE_INIT_PIR / (self.FREE_MAX - self.FREE_INIT_PIR)))

    def forward(self, coeffs_vis: torch.Tensor, coeffs_pir: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits_vis, logits_pir = self.net(torch.cat([coeffs_vis, coeffs_pir], dim=1)).chunk(2, dim=1)
        if self.rule == "residual":
            return self.FREE_MAX * torch.sigmoid(logits_vis), self.FREE_MAX * torch.sigmoid(logits_pir)
        weight_vis = torch.sigmoid(logits_vis - logits_pir)  # = softmax over the pair
        return weight_vis, 1.0 - weight_vis


class ModulationHead(nn.Module):
    """Φ: text feature → per-atom vector, identity + b·tanh(MLP/b), the MLP's last layer zero-initialised.

    The bound b keeps the language modulation a correction, whatever the text: a prompt far from the
    training prompts (a portrait, an indoor scene) gives a standardised feature far outside the training
    range, and an unbounded head then drives every coefficient to the same extreme (a flat frame). Near
    the identity, b·tanh(x/b) ≈ x, so the bound changes nothing for in-range features.
    """

    def __init__(self, text_dim: int, hidden: int, n_atoms: int, identity: float, bound: float) -> None:
        super().__init__()
        self.identity = identity
        self.bound = bound
        self.mlp = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, n_atoms))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.identity + self.bound * torch.tanh(self.mlp(feature) / self.bound)


@dataclass
class FastPathOutput:
    """All intermediate results of one fast-path pass (training uses them; inference keeps two)."""

    coeffs_vis: torch.Tensor
    coeffs_pir: torch.Tensor
    weight_vis: torch.Tensor
    pseudo_ir: torch.Tensor
    fused_y: torch.Tensor


class VgiiModel(nn.Module):
    """The deployable model: REN, RIN, TailNet, gate Ψ and the Φγ/Φβ heads over a frozen D."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        k = config.atom_size
        self.ren = Ren(config.n_atoms, config.ren_width, config.lista_steps)
        self.rin = Rin(config.n_atoms, config.widths, config.rin_stride)
        self.gate = Gate(config.n_atoms, config.gate_width, config.fusion_rule)
        self.tail = TailNet(config.tail_width)
        bound = config.modulation_bound
        self.gamma_head = ModulationHead(config.text_dim, config.text_hidden, config.n_atoms, 1.0, bound)
        self.beta_head = ModulationHead(config.text_dim, config.text_hidden, config.n_atoms, 0.0, bound)
        self.register_buffer("dictionary", torch.zeros(config.n_atoms, k, k))
        self.register_buffer("lista_scale", torch.ones(()))
        self.register_buffer("text_mean", torch.zeros(config.text_dim))
        self.register_buffer("text_std", torch.ones(config.text_dim))

    def set_dictionary(self, dictionary: torch.Tensor) -> None:
        """Freeze the shared dictionary D and set the LISTA step scale to 1/L, L = max_ω ‖a(ω)‖²."""
        self.dictionary.copy_(dictionary.detach())
        lipschitz = (transfer_function(self.dictionary, 64, 64).abs() ** 2).sum(dim=0).max()
        self.lista_scale.fill_(1.0 / float(lipschitz.clamp_min(1e-8)))

    def identity_modulation(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """γ = 1, β = 0: B×K each."""
        ones = self.dictionary.new_ones(batch, self.config.n_atoms)
        return ones, torch.zeros_like(ones)

    def visible_coeffs(self, y: torch.Tensor) -> torch.Tensor:
        return self.ren(y, self.dictionary, self.lista_scale)

    def pseudo_ir_path(self, y: torch.Tensor, gamma: torch.Tensor,
                       beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(S̃_vis, S_pir¹, I_pir): the fast path up to the pseudo-IR, without the fusion gate."""
        coeffs_vis = self.visible_coeffs(y)
        modulated = gamma[:, :, None, None] * coeffs_vis + beta[:, :, None, None]
        coeffs_pir = self.rin(modulated)
        return coeffs_vis, coeffs_pir, self.tail(coeffs_pir, self.dictionary)

    def fast_path(self, y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> FastPathOutput:
        """y B×1×H×W in [0, 1] (H, W multiples of 8); γ, β B×K."""
        coeffs_vis, coeffs_pir, pseudo_ir = self.pseudo_ir_path(y, gamma, beta)
        weight_vis, weight_pir = self.gate(coeffs_vis, coeffs_pir)
        if self.config.fusion_rule == "residual":
            change = synthesize(self.dictionary, (weight_vis - 1.0) * coeffs_vis + weight_pir * coeffs_pir)
            fused_y = (y + change).clamp(0.0, 1.0)
        else:
            fused_y = self.tail(weight_vis * coeffs_vis + weight_pir * coeffs_pir, self.dictionary, refined=False)
        return FastPathOutput(coeffs_vis, coeffs_pir, weight_vis, pseudo_ir, fused_y)

    def forward(self, y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fast path, as exported: (pseudo_ir, fused_y), each B×1×H×W in [0, 1]."""
        out = self.fast_path(y, gamma, beta)
        return out.pseudo_ir, out.fused_y

    def initial_pseudo_ir(self, y: torch.Tensor) -> torch.Tensor:
        """Slow path, image part: I_pir⁰ = Tail(RIN(REN(y))), unmodulated."""
        return self.tail(self.rin(self.visible_coeffs(y)), self.dictionary)

    def modulation(self, text_feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slow path, text part: raw B×text_dim feature → standardised → (γ, β), B×K each."""
        standardised = (text_feature - self.text_mean) / self.text_std
        return self.gamma_head(standardised), self.beta_head(standardised)
