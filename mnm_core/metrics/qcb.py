"""Chen–Blum fusion quality Qcb as VIFB's `metricsQcb.m` computes it, for one channel.

Y. Chen and R. S. Blum, "A new automated quality assessment algorithm for image fusion", Image and
Vision Computing 27 (2009) 1421–1432; MATLAB implementation by Z. Liu, adapted by VIFB.

Steps, each matching the MATLAB code:
1. each image is min–max rescaled to 0..255 and rounded (`normalize1`);
2. contrast-sensitivity filtering in the frequency domain: a difference of Gaussians in the radial
   frequency of MATLAB's `freqspace` grid, scaled by (W/30, H/30);
3. local contrast C = (I∗G₂ₛ)/(I∗G₄ₛ) − 1 with unnormalised 31×31 Gaussians (σ = 2, 4), zero padding
   (`filter2(..., 'same')`), then masked contrast C' = C³ / (C² + 1e-4);
4. preservation Q_sF = min(C'_s, C'_F)/max(C'_s, C'_F) weighted by the saliency C'_s² / ΣC'², averaged.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_F0, _F1, _A = 15.3870, 1.3456, 0.7622
"""Parameters of the contrast sensitivity function (difference of Gaussians)."""
_Z = 0.0001
"""Regulariser of the masked contrast C' = C^p / (C^q + Z), p = 3, q = 2."""
_HALF = 15
"""Half size of the 31×31 Gaussian windows."""


def rescale_round(image: np.ndarray) -> np.ndarray:
    """`normalize1`: min–max to 0..255 and round half away from zero (MATLAB `round`); float64.

    An all-zero image is returned unchanged; any other constant image gives NaN, as in MATLAB.
    """
    data = image.astype(np.float64)
    high, low = data.max(), data.min()
    if high == 0 and low == 0:
        return data
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = (data - low) / (high - low) * 255
    return np.floor(scaled + 0.5)  # values are ≥ 0, so this is MATLAB's round


def _freqspace(n: int) -> np.ndarray:
    """MATLAB `freqspace` for one dimension of length n: (k − ⌊n/2⌋)·2/n, k = 0..n−1."""
    return (np.arange(n) - n // 2) * (2.0 / n)


@lru_cache(maxsize=8)
def _csf(height: int, width: int) -> np.ndarray:
    """The contrast sensitivity filter Sd, ifftshift-ed to FFT order, rfft2 half width (H×(W//2+1))."""
    u, v = np.meshgrid(_freqspace(width) * (width / 30), _freqspace(height) * (height / 30))
    r = np.sqrt(u**2 + v**2)
    sd = np.exp(-((r / _F0) ** 2)) - _A * np.exp(-((r / _F1) ** 2))
    # Sd is symmetric under (k1, k2) → (−k1, −k2) mod (H, W), so filtering a real image gives a real image:
    # MATLAB's ifft2 of its (exactly Hermitian) product is real up to rounding.
    return np.ascontiguousarray(np.fft.ifftshift(sd)[:, : width // 2 + 1])


@lru_cache(maxsize=2)
def _gaussian_taps(sigma: float) -> np.ndarray:
    """1-D factor of `gaussian2d`: exp(−x²/2σ²) on −15..15; the 1/(2πσ²) goes on one axis only."""
    x = np.arange(-_HALF, _HALF + 1, dtype=np.float64)
    return np.exp(-(x * x) / (2 * sigma * sigma))


def _gaussian_filter(image: np.ndarray, sigma: float) -> np.ndarray:
    """`filter2(G, image, 'same')` for the unnormalised 31×31 Gaussian G of `gaussian2d` (separable)."""
    from scipy.ndimage import correlate1d  # imported here: the rest of mnm_core.metrics runs without scipy

    taps = _gaussian_taps(sigma)
    rows = correlate1d(image, taps, axis=0, mode="constant", cval=0.0)
    return correlate1d(rows, taps / (2 * np.pi * sigma * sigma), axis=1, mode="constant", cval=0.0)


def masked_contrast(image: np.ndarray) -> np.ndarray:
    """C' of one channel (H×W, any numeric range): steps 1–3 above; float64 H×W."""
    from scipy import fft

    data = rescale_round(image)
    height, width = data.shape
    filtered = fft.irfft2(fft.rfft2(data) * _csf(height, width), s=(height, width))
    with np.errstate(divide="ignore", invalid="ignore"):
        contrast = np.abs(_gaussian_filter(filtered, 2.0) / _gaussian_filter(filtered, 4.0) - 1)
        squared = contrast * contrast  # C^q with q = 2; C^p with p = 3 below
        return squared * contrast / (squared + _Z)


def qcb_from_contrast(c_vis: np.ndarray, c_ir: np.ndarray, c_fused: np.ndarray) -> float:
    """Step 4 from the masked contrasts of the two sources and the fused image."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q_sources = []
        for c_src in (c_vis, c_ir):
            mask = (c_src < c_fused).astype(np.float64)
            # Written as MATLAB does (ratio·mask + inverse·(1−mask)) so Inf/NaN propagate the same way.
            q_sources.append((c_src / c_fused) * mask + (c_fused / c_src) * (1 - mask))
        energy = c_vis * c_vis + c_ir * c_ir
        quality = (c_vis * c_vis) / energy * q_sources[0] + (c_ir * c_ir) / energy * q_sources[1]
    return float(np.mean(quality))


def qcb(vis: np.ndarray, ir: np.ndarray, fused: np.ndarray) -> float:
    """Qcb of three H×W channels (0..255 values); NaN where MATLAB's would be (e.g. constant images)."""
    return qcb_from_contrast(masked_contrast(vis), masked_contrast(ir), masked_contrast(fused))


__all__ = ["masked_contrast", "qcb", "qcb_from_contrast", "rescale_round"]
