"""Full-reference similarity of a pseudo-infrared image to the real one: PSNR and SSIM on 0..255 values.

SSIM is Wang et al. (2004) as MATLAB's `ssim` computes it by default: Gaussian window σ = 1.5 (11×11),
replicate border, K₁ = 0.01, K₂ = 0.03, L = 255, mean of the SSIM map.
"""

from __future__ import annotations

import math

import numpy as np

_PEAK = 255.0
_SIGMA = 1.5
_RADIUS = 5
"""Radius 5 → the 11×11 window of MATLAB's `ssim` (2·⌈3σ⌉ + 1)."""
_TAPS = np.exp(-0.5 * (np.arange(-_RADIUS, _RADIUS + 1) / _SIGMA) ** 2)
_TAPS /= _TAPS.sum()


def _blur(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur in float64 with a replicated border (scipy's gaussian_filter, mode
    "nearest", with the same taps; OpenCV keeps this module free of scipy for the GPU training run)."""
    import cv2

    return cv2.sepFilter2D(image, cv2.CV_64F, _TAPS, _TAPS, borderType=cv2.BORDER_REPLICATE)


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) with peak 255; +inf for identical images."""
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(_PEAK**2 / mse)


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM of two same-size H×W images in 0..255."""
    x, y = image.astype(np.float64), reference.astype(np.float64)
    mu_x, mu_y = _blur(x), _blur(y)
    var_x = _blur(x * x) - mu_x**2
    var_y = _blur(y * y) - mu_y**2
    cov = _blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * _PEAK) ** 2, (0.03 * _PEAK) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


__all__ = ["psnr", "ssim"]
