"""The dictionary math itself: adjointness, the CSB and DSB optimality conditions, recovery."""

from __future__ import annotations

import pytest
import torch

from mnm_core.dictionary import (
    DictionaryStatistics,
    circular_pad,
    csb_solve,
    dsb_normal_equations,
    dsb_solve,
    dsb_solve_batch,
    synthesize,
    synthesize_adjoint,
    transfer_function,
)
from test.conftest import random_dictionary


@pytest.fixture(autouse=True)
def float64():
    """Exact-math checks run in double precision; the default is restored for other modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def csb_objective(image, dictionary, coeffs, coeffs_prev, mu):
    return 0.5 * ((image - synthesize(dictionary, coeffs)) ** 2).sum() + 0.5 * mu * ((coeffs - coeffs_prev) ** 2).sum()


def test_synthesis_matches_explicit_circular_sum():
    dictionary = random_dictionary(3, 5).double()
    coeffs = torch.randn(1, 3, 9, 11)
    out = synthesize(dictionary, coeffs)[0, 0]
    expected = torch.zeros(9, 11)
    for k in range(3):
        for u in range(5):
            for v in range(5):
                expected += dictionary[k, u, v] * torch.roll(coeffs[0, k], shifts=(2 - u, 2 - v), dims=(0, 1))
    torch.testing.assert_close(out, expected)


def test_synthesis_inference_form_equals_training_form():
    """Without autograd the synthesis runs as depthwise + 1×1 sum (the exported form); same values."""
    dictionary = random_dictionary(7, 5).double()
    coeffs = torch.randn(2, 7, 16, 24)
    with torch.enable_grad():
        dense = synthesize(dictionary, coeffs)
    with torch.no_grad():
        depthwise = synthesize(dictionary, coeffs)
    torch.testing.assert_close(depthwise, dense)


def test_adjoint_identity():
    dictionary = random_dictionary(6, 5).double()
    coeffs = torch.randn(2, 6, 16, 24)
    residual = torch.randn(2, 1, 16, 24)
    lhs = (synthesize(dictionary, coeffs) * residual).sum()
    rhs = (coeffs * synthesize_adjoint(dictionary, residual)).sum()
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    # a transposed or unflipped adjoint would fail this: compare against autograd's adjoint too
    coeffs.requires_grad_(True)
    (synthesize(dictionary, coeffs) * residual).sum().backward()
    torch.testing.assert_close(coeffs.grad, synthesize_adjoint(dictionary, residual))


def test_fourier_transfer_function_matches_spatial_synthesis():
    dictionary = random_dictionary(4, 5).double()
    coeffs = torch.randn(1, 4, 16, 16)
    a = transfer_function(dictionary, 16, 16)
    fourier = torch.fft.irfft2((a * torch.fft.rfft2(coeffs[0])).sum(0), s=(16, 16))
    torch.testing.assert_close(fourier, synthesize(dictionary, coeffs)[0, 0])


def test_csb_zero_gradient_and_beats_perturbations():
    dictionary = random_dictionary(5, 5).double()
    image = torch.rand(2, 1, 16, 16)
    coeffs_prev = torch.randn(2, 5, 16, 16)
    mu = 0.3
    solution = csb_solve(image, dictionary, coeffs_prev, mu).requires_grad_(True)
    objective = csb_objective(image, dictionary, solution, coeffs_prev, mu)
    (grad,) = torch.autograd.grad(objective, solution)
    assert grad.abs().max() < 1e-8
    best = objective.item()
    for seed in range(10):
        noise = torch.randn(solution.shape, generator=torch.Generator().manual_seed(seed)) * 1e-3
        assert csb_objective(image, dictionary, solution.detach() + noise, coeffs_prev, mu) > best


def test_csb_per_image_mu_and_zero_dictionary_returns_previous():
    image = torch.rand(2, 1, 8, 8)
    coeffs_prev = torch.randn(2, 3, 8, 8)
    zero = torch.zeros(3, 5, 5)
    torch.testing.assert_close(csb_solve(image, zero, coeffs_prev, torch.tensor([0.1, 2.0])), coeffs_prev)


def test_dsb_solves_normal_equations():
    dictionary_prev = random_dictionary(4, 3, seed=1).double()
    coeffs = [torch.randn(2, 4, 12, 12), torch.randn(2, 4, 12, 12)]
    images = [torch.rand(2, 1, 12, 12), torch.rand(2, 1, 12, 12)]
    mu = 0.05
    solution = dsb_solve_batch(list(zip(coeffs, images)), 3, mu, dictionary_prev)
    n_pixels = 2 * 2 * 12 * 12

    def objective(d):
        data = sum(((i - synthesize(d, s)) ** 2).sum() for s, i in zip(coeffs, images)) / n_pixels
        return data + mu * ((d - dictionary_prev) ** 2).sum()

    d = solution.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(d), d)
    assert grad.abs().max() < 1e-9
    gram, rhs = dsb_normal_equations(torch.cat(coeffs), torch.cat(images), 3)
    lhs = (gram / n_pixels + mu * torch.eye(gram.shape[0])) @ solution.reshape(-1)
    torch.testing.assert_close(lhs, rhs / n_pixels + mu * dictionary_prev.reshape(-1))


def test_dsb_recovers_planted_dictionary():
    planted = random_dictionary(4, 5, seed=3).double()
    generator = torch.Generator().manual_seed(4)
    coeffs = torch.randn(3, 4, 24, 24, generator=generator) * (torch.rand(3, 4, 24, 24, generator=generator) < 0.2)
    images = synthesize(planted, coeffs)
    recovered = dsb_solve_batch([(coeffs, images)], 5, 1e-10, None)
    assert (recovered - planted).norm() / planted.norm() < 1e-6


def test_accumulated_statistics_equal_one_big_batch():
    generator = torch.Generator().manual_seed(5)
    batches = [(torch.randn(2, 3, 16, 16, generator=generator), torch.rand(2, 1, 16, 16, generator=generator))
               for _ in range(4)]
    statistics = DictionaryStatistics(3, 5)
    for coeffs, image in batches:
        statistics.add(coeffs, image)
    accumulated = statistics.solve(0.01)
    all_coeffs = torch.cat([c for c, _ in batches])
    all_images = torch.cat([i for _, i in batches])
    one_batch = dsb_solve_batch([(all_coeffs, all_images)], 5, 0.01, None)
    torch.testing.assert_close(accumulated, one_batch)
    gram, rhs = dsb_normal_equations(all_coeffs, all_images, 5)
    direct = dsb_solve(gram / statistics.n_pixels, rhs / statistics.n_pixels, 0.01, None, 3, 5)
    torch.testing.assert_close(accumulated, direct)


@pytest.mark.parametrize("size", [(12, 9), (4, 6)])  # (4, 6): offsets wrap around the image
def test_dsb_normal_equations_equal_patch_outer_products(size):
    """G = Σ P·Pᵀ and c = Σ P·I with P the circular K·k² patch vectors, the definition the Fourier form replaces."""
    generator = torch.Generator().manual_seed(6)
    coeffs = torch.randn(2, 3, *size, generator=generator, dtype=torch.float64)
    image = torch.randn(2, 1, *size, generator=generator, dtype=torch.float64)
    patches = torch.nn.functional.unfold(circular_pad(coeffs, 2), 5)  # B×(K·k²)×HW
    gram, rhs = dsb_normal_equations(coeffs, image, 5)
    torch.testing.assert_close(gram, torch.einsum("bph,bqh->pq", patches, patches))
    torch.testing.assert_close(rhs, torch.einsum("bph,bh->p", patches, image.flatten(1)))
