"""The six no-reference / source-reference fusion metrics of the VIFB benchmark.

Each function reproduces the corresponding MATLAB file of VIFB (xingchenzhang/VIFB, `metrics/`):
images are 0..255 values (uint8 arrays, read as doubles), H×W or H×W×3.

- AG  average gradient (`metricsAvg_gradient.m`): per channel Σ√((∂x² + ∂y²)/2) / ((H−1)(W−1)), with
  MATLAB `gradient` (central differences inside, one-sided at the border); channels averaged.
- CE  cross entropy (`metricsCross_entropy.m`): ½(KL(vis‖fused) + KL(ir‖fused)) of the 256-bin
  histograms, in bits, bins empty in either image skipped; per channel, averaged. Lower is better.
- EI  edge intensity (`metricsEdge_intensity.m`): mean Sobel magnitude, replicate border, all channels.
- EN  entropy (`metricsEntropy.m`): Shannon entropy (bits) of the 256-bin histogram, per channel, averaged.
- Qcb Chen–Blum (`metricsQcb.m`, see `mnm_core.metrics.qcb`), per channel, averaged.
- SF  spatial frequency (`metricsSpatial_frequency.m`): √(RF + CF), with an H×W×3 image read as the
  H×3W matrix [R G B] (MATLAB's two-index loops), so colour SF is *not* the mean of per-channel SF.

Pairing of channels, as VIFB: with a colour fused image, channel k is scored against channel k of a
colour source, or against the whole of a gray source. With a gray fused image, a colour source is turned
gray by MATLAB's `rgb2gray` for CE (as VIFB does) and for Qcb (where VIFB's own code fails).
"""

from __future__ import annotations

import numpy as np

from mnm_core.metrics.qcb import masked_contrast, qcb_from_contrast

_RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
"""MATLAB `rgb2gray` weights (ITU-R BT.601 rounded so that they sum to 1 in double)."""


def rgb2gray(rgb: np.ndarray) -> np.ndarray:
    """MATLAB `rgb2gray` of an H×W×3 uint8 RGB image: weighted sum rounded half up, uint8 H×W."""
    rgb = rgb.astype(np.float64)
    gray = rgb[..., 0] * _RGB2GRAY[0] + rgb[..., 1] * _RGB2GRAY[1] + rgb[..., 2] * _RGB2GRAY[2]
    return np.clip(np.floor(gray + 0.5), 0, 255).astype(np.uint8)


def _channels(image: np.ndarray) -> list[np.ndarray]:
    """The H×W planes of an image, each C-contiguous (filters along rows are much faster then)."""
    if image.ndim == 2:
        return [image]
    return [np.ascontiguousarray(image[..., k]) for k in range(image.shape[2])]


def _histogram(channel: np.ndarray) -> np.ndarray:
    """256-bin probabilities of an integer-valued 0..255 channel."""
    counts = np.bincount(channel.astype(np.intp, copy=False).ravel(), minlength=256)
    return counts / channel.size


def avg_gradient(fused: np.ndarray) -> float:
    """AG of the fused image (H×W or H×W×3)."""
    values = []
    for band in _channels(fused.astype(np.float64)):
        d_rows, d_cols = np.gradient(band)
        s = np.sqrt((d_cols * d_cols + d_rows * d_rows) / 2)
        values.append(s.sum() / ((band.shape[0] - 1) * (band.shape[1] - 1)))
    return float(np.mean(values))


def edge_intensity(fused: np.ndarray) -> float:
    """EI of the fused image: Sobel via `imfilter(..., 'replicate')` on every channel, mean magnitude."""
    from scipy.ndimage import correlate1d  # imported here: the rest of mnm_core.metrics runs without scipy

    smooth, diff = np.array([1.0, 2.0, 1.0]), np.array([1.0, 0.0, -1.0])
    total = 0.0
    for band in _channels(fused.astype(np.float64)):
        gx = correlate1d(correlate1d(band, diff, axis=0, mode="nearest"), smooth, axis=1, mode="nearest")
        gy = correlate1d(correlate1d(band, smooth, axis=0, mode="nearest"), diff, axis=1, mode="nearest")
        total += np.sqrt(gx * gx + gy * gy).sum()
    return float(total / fused.size)


def entropy(fused: np.ndarray) -> float:
    """EN of the fused image, per channel, averaged (bits)."""
    values = []
    for band in _channels(fused):
        p = _histogram(band)
        p = p[p != 0]
        values.append(-np.sum(p * np.log2(p)))
    return float(np.mean(values))


def spatial_frequency(fused: np.ndarray) -> float:
    """SF of the fused image; H×W×3 is read as the H×3W matrix [R G B], as MATLAB's loops do."""
    data = fused.astype(np.float64)
    if data.ndim == 3:
        data = np.concatenate(_channels(data), axis=1)
    size = data.size
    row_freq = np.sum(np.diff(data, axis=1) ** 2) / size
    col_freq = np.sum(np.diff(data, axis=0) ** 2) / size
    return float(np.sqrt(row_freq + col_freq))


def _kl_bits(source: np.ndarray, fused: np.ndarray) -> float:
    """VIFB's `cross_entropy(img1, fused)`: Σ P₁ log₂(P₁/P₂) over bins non-empty in both."""
    p1, p2 = _histogram(source), _histogram(fused)
    both = (p1 != 0) & (p2 != 0)
    return float(np.sum(p1[both] * np.log2(p1[both] / p2[both])))


def _source_planes(source: np.ndarray, fused: np.ndarray) -> list[np.ndarray]:
    """The source channel paired with each fused channel (see the module docstring)."""
    if fused.ndim == 2:
        return [rgb2gray(source) if source.ndim == 3 else source]
    if source.ndim == 2:
        return [source] * fused.shape[2]
    return _channels(source)


def cross_entropy(vis: np.ndarray, ir: np.ndarray, fused: np.ndarray) -> float:
    """CE: per fused channel, the mean of KL(vis‖fused) and KL(ir‖fused); channels averaged."""
    values = [
        (_kl_bits(v, f) + _kl_bits(i, f)) / 2
        for v, i, f in zip(_source_planes(vis, fused), _source_planes(ir, fused), _channels(fused))
    ]
    return float(np.mean(values))


def chen_blum(vis: np.ndarray, ir: np.ndarray, fused: np.ndarray) -> float:
    """Qcb per fused channel, averaged; a source plane shared by several channels is filtered once."""
    cache: dict[int, np.ndarray] = {}

    def contrast(plane: np.ndarray) -> np.ndarray:
        key = id(plane)
        if key not in cache:
            cache[key] = masked_contrast(plane)
        return cache[key]

    vis_planes, ir_planes = _source_planes(vis, fused), _source_planes(ir, fused)
    values = [
        qcb_from_contrast(contrast(v), contrast(i), masked_contrast(f))
        for v, i, f in zip(vis_planes, ir_planes, _channels(fused))
    ]
    return float(np.mean(values))


__all__ = [
    "avg_gradient",
    "chen_blum",
    "cross_entropy",
    "edge_intensity",
    "entropy",
    "rgb2gray",
    "spatial_frequency",
]
