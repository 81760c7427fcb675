"""Convolutional dictionary math (DESIGN.md §1), with circular boundaries.

Shapes: a dictionary D is K×k×k (K one-channel atoms of odd side k); coefficients S are B×K×H×W;
images I are B×1×H×W. Synthesis is D⋆S = Σ_k atom_k ⋆ S_k, where ⋆ is 2-D cross-correlation with
circular (wrap-around) boundaries:

    (D⋆S)[i, j] = Σ_k Σ_{u,v} D[k, u, v] · S[k, i + u − p, j + v − p]   (indices mod H, W; p = k // 2)

`synthesize` and `synthesize_adjoint` use only Slice/Concat/Conv, so they export to ONNX and
TensorRT. The two solvers are training-side: the CSB uses the FFT, the DSB a Cholesky factorisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def circular_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Wrap-around pad of the last two axes by `pad` on every side (built from slices and concat)."""
    if pad == 0:
        return x
    x = torch.cat([x[..., -pad:, :], x, x[..., :pad, :]], dim=-2)
    return torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)


def synthesize(dictionary: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """D⋆S: K×k×k dictionary, B×K×H×W coefficients → B×1×H×W image.

    Two equal forms: with autograd on, one dense K → 1 convolution (the cheaper one to differentiate in
    torch); without (inference, and so the exported graph), one k×k convolution per atom (depthwise)
    then a 1×1 sum over the atoms — 4× faster in ONNX Runtime on the CPU, whose dense kernels spend
    most of their work on the single output channel.
    """
    n_atoms, size, _ = dictionary.shape
    padded = circular_pad(coeffs, size // 2)
    if torch.is_grad_enabled():
        return F.conv2d(padded, dictionary.reshape(1, n_atoms, size, size))
    per_atom = F.conv2d(padded, dictionary.reshape(n_atoms, 1, size, size), groups=n_atoms)
    return F.conv2d(per_atom, dictionary.new_ones(1, n_atoms, 1, 1))


def synthesize_adjoint(dictionary: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Dᵀ⋆R, the exact adjoint of `synthesize`: B×1×H×W → B×K×H×W.

    Correlating with the flipped atoms undoes the shift direction of the synthesis.
    """
    n_atoms, size, _ = dictionary.shape
    weight = dictionary.flip(-1, -2).reshape(n_atoms, 1, size, size)
    return F.conv2d(circular_pad(image, size // 2), weight)


def transfer_function(dictionary: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-frequency synthesis weights a(ω): K×H×(W//2+1) complex, so that FFT(D⋆S) = Σ_k a_k·FFT(S_k).

    The circular correlation with atom d equals circular convolution with h[m] = d[p − m]; h is the
    flipped atom placed at the origin with wrap-around.
    """
    n_atoms, size, _ = dictionary.shape
    if height < size or width < size:
        raise ValueError(f"image {height}×{width} is smaller than the {size}×{size} atoms")
    kernel = dictionary.new_zeros(n_atoms, height, width)
    kernel[:, :size, :size] = dictionary.flip(-1, -2)
    kernel = torch.roll(kernel, shifts=(-(size // 2), -(size // 2)), dims=(-2, -1))
    return torch.fft.rfft2(kernel)


def csb_solve(
    image: torch.Tensor, dictionary: torch.Tensor, coeffs_prev: torch.Tensor, mu: torch.Tensor | float
) -> torch.Tensor:
    """Coefficient solving block: argmin_S ½‖I − D⋆S‖² + (μ/2)‖S − S_prev‖².

    Per frequency the normal matrix is ā aᵀ + μI (rank one plus diagonal); Sherman–Morrison gives
    Ŝ = (b − ā·(aᵀb)/(μ + ‖a‖²))/μ with b = ā·Î + μ·Ŝ_prev. With D = 0 this returns S_prev.

    image B×1×H×W, dictionary K×k×k, coeffs_prev B×K×H×W, mu a scalar or a B-vector (> 0).
    """
    height, width = image.shape[-2:]
    mu = torch.as_tensor(mu, dtype=image.dtype, device=image.device).reshape(-1, 1, 1, 1)
    a = transfer_function(dictionary, height, width).unsqueeze(0)  # 1×K×H×W'
    image_hat = torch.fft.rfft2(image)  # B×1×H×W'
    prev_hat = torch.fft.rfft2(coeffs_prev)  # B×K×H×W'
    b = a.conj() * image_hat + mu * prev_hat
    a_dot_b = (a * b).sum(dim=1, keepdim=True)
    a_norm2 = (a.abs() ** 2).sum(dim=1, keepdim=True)
    coeffs_hat = (b - a.conj() * a_dot_b / (mu + a_norm2)) / mu
    return torch.fft.irfft2(coeffs_hat, s=(height, width))


class DictionaryStatistics:
    """Sufficient statistics of the DSB least squares, accumulated over images and modalities.

    The DSB objective (1/n)·Σ‖I − D⋆S‖² + μ‖D − D_prev‖², n the number of pixels summed over, has
    normal equations (G/n + μI)·d = c/n + μ·d_prev with G = Σ PPᵀ and c = Σ P·I summed over every
    (image, coefficients) pair. Because they are sums, a whole dataset can be added batch by batch
    and solved once: the shared dataset-level dictionary.
    """

    def __init__(self, n_atoms: int, atom_size: int, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> None:
        self.n_atoms = n_atoms
        self.atom_size = atom_size
        n_unknowns = n_atoms * atom_size**2
        self.gram = torch.zeros(n_unknowns, n_unknowns, dtype=dtype, device=device)
        self.rhs = torch.zeros(n_unknowns, dtype=dtype, device=device)
        self.n_pixels = 0

    def add(self, coeffs: torch.Tensor, image: torch.Tensor) -> None:
        """Add B×K×H×W coefficients and their B×1×H×W images (no gradient is kept)."""
        with torch.no_grad():
            gram, rhs = dsb_normal_equations(coeffs.to(self.gram.dtype), image.to(self.gram.dtype),
                                             self.atom_size)
            self.gram += gram
            self.rhs += rhs
            self.n_pixels += image.shape[0] * image.shape[-2] * image.shape[-1]

    def solve(self, mu: float, dictionary_prev: torch.Tensor | None = None) -> torch.Tensor:
        """The K×k×k dictionary minimising the accumulated DSB objective."""
        if self.n_pixels == 0:
            raise ValueError("no statistics were added; call add() before solve()")
        prev = None if dictionary_prev is None else dictionary_prev.to(self.gram.dtype)
        return dsb_solve(self.gram / self.n_pixels, self.rhs / self.n_pixels, mu, prev,
                         self.n_atoms, self.atom_size)


def dsb_normal_equations(coeffs: torch.Tensor, image: torch.Tensor,
                         atom_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """G ((K·k²)²) and c (K·k²) of the DSB least squares for one batch, by cross-correlations in the
    Fourier domain.

    Entry d[c, u, v] of the dictionary multiplies S_c shifted by a = (u − p, v − p), so
    G[(c,u,v), (c',u',v')] = Σ_b Σ_y S_c[y]·S_c'[y + a' − a] = R_cc'[a' − a] and c[(c,u,v)] = Q_c[a], with
    the circular cross-correlations R_cc' = IFFT(conj(Ŝ_c)·Ŝ_c') and Q_c = IFFT(conj(Î)·Ŝ_c) summed over
    the batch. Only the (2k − 1)² offsets are read out: O(K²·HW·log HW) instead of the O(K²k⁴·HW) of
    forming G from K·k²-long patch vectors (the stage-1 step's largest cost at 128×128 crops).
    """
    n_atoms = coeffs.shape[1]
    height, width = image.shape[-2:]
    coeffs_hat = torch.fft.rfft2(coeffs)  # B×K×H×W'
    cross = torch.einsum("bkhw,bjhw->kjhw", coeffs_hat.conj(), coeffs_hat)
    correlation = torch.fft.irfft2(cross, s=(height, width))  # R: K×K×H×W
    image_correlation = torch.fft.irfft2((torch.fft.rfft2(image).conj() * coeffs_hat).sum(0), s=(height, width))
    shifts = torch.arange(atom_size, device=coeffs.device) - atom_size // 2
    rows = (shifts[None, :] - shifts[:, None]) % height  # [u, u'] → (u' − u) mod H
    cols = (shifts[None, :] - shifts[:, None]) % width
    gram = correlation[:, :, rows][:, :, :, :, cols]  # [c, c', u, u', v, v']
    gram = gram.permute(0, 2, 4, 1, 3, 5).reshape(n_atoms * atom_size**2, n_atoms * atom_size**2)
    rhs = image_correlation[:, shifts % height][:, :, shifts % width].reshape(-1)
    return gram, rhs


def dsb_solve(gram: torch.Tensor, rhs: torch.Tensor, mu: torch.Tensor | float,
              dictionary_prev: torch.Tensor | None, n_atoms: int, atom_size: int) -> torch.Tensor:
    """Dictionary solving block: solve (G + μI)·d = c + μ·d_prev by Cholesky → K×k×k.

    `gram` and `rhs` are the (pixel-averaged) normal-equation terms; differentiable in all inputs.
    """
    n_unknowns = gram.shape[0]
    eye = torch.eye(n_unknowns, dtype=gram.dtype, device=gram.device)
    system = gram + mu * eye
    target = rhs if dictionary_prev is None else rhs + mu * dictionary_prev.reshape(-1)
    factor = torch.linalg.cholesky(system)
    solution = torch.cholesky_solve(target.unsqueeze(-1), factor).squeeze(-1)
    return solution.reshape(n_atoms, atom_size, atom_size)


def dsb_solve_batch(pairs: list[tuple[torch.Tensor, torch.Tensor]], atom_size: int,
                    mu: torch.Tensor | float, dictionary_prev: torch.Tensor | None) -> torch.Tensor:
    """DSB over one training batch and several modalities.

    `pairs` holds (B×K×H×W coefficients, B×1×H×W image) per modality; their normal equations are
    summed, averaged per pixel and solved, so one dictionary serves every image and modality.
    """
    n_atoms = pairs[0][0].shape[1]
    gram = rhs = None
    n_pixels = 0
    for coeffs, image in pairs:
        g, c = dsb_normal_equations(coeffs, image, atom_size)
        gram = g if gram is None else gram + g
        rhs = c if rhs is None else rhs + c
        n_pixels += image.shape[0] * image.shape[-2] * image.shape[-1]
    return dsb_solve(gram / n_pixels, rhs / n_pixels, mu, dictionary_prev, n_atoms, atom_size)
