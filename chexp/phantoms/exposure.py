"""From attenuation to a noisy image in the torchxrayvision range [-1024, 1024].

``expose`` is strictly increasing in the density, saturating below ``hi`` (< 1024) and starting at
``lo`` (> -1024) for air, so a finding that changes the density changes the image, and the
image stays away from the clip limits. The noise field comes from its own random stream; its
amplitude depends only on the local signal, so where the density is unchanged the noise is too.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .params import ParamBatch

XRV_LIMIT = 1024.0


def expose(density: np.ndarray, p: ParamBatch) -> np.ndarray:
    """Film curve: ``lo + (hi - lo) * (1 - exp(-gamma * density))``, float32 (B, S, S)."""
    return (p.lo + (p.hi - p.lo) * (1.0 - np.exp(-p.gamma * density))).astype(np.float32)


def noise_field(white: np.ndarray, p: ParamBatch) -> np.ndarray:
    """Unit-variance noise (B, S, S) mixing white and slightly correlated noise.

    Args:
        white: (B, 2, S, S) standard normal draws from each sample's noise stream.
    """
    size = white.shape[-1]
    corr = ndimage.gaussian_filter(white[:, 1], sigma=(0, 0.9 * size / 128, 0.9 * size / 128))
    corr /= corr.std(axis=(1, 2), keepdims=True) + 1e-6
    c = p.noise_corr
    return (np.sqrt(1.0 - c * c) * white[:, 0] + c * corr).astype(np.float32)


def add_noise(image: np.ndarray, z: np.ndarray, p: ParamBatch) -> np.ndarray:
    """Quantum-like noise: its standard deviation grows with the local signal (dense = fewer photons)."""
    level = (image - p.lo) / (p.hi - p.lo)
    sigma = p.noise * (0.6 + 0.8 * level)
    return np.clip(image + sigma * z, -XRV_LIMIT, XRV_LIMIT).astype(np.float32)
