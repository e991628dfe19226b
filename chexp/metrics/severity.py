"""Severity-map correlation (CheXplain-IBA, BrixIA): paint every pixel with its lung zone's
score and correlate with an attribution map.

BrixIA zones: each lung is split into thirds of its own height, top to bottom; zones A, B, C are
the right lung (image *left*: patient right is image left), D, E, F the left lung (image right).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputShapeError
from ._util import as_maps, pearson

ZONES = ("A", "B", "C", "D", "E", "F")


def brixia_zones(lung_mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Split a two-lung mask ``(H, W)`` into the six BrixIA zones, bool ``(6, H, W)`` (A..F).

    The lungs are separated at the image's vertical midline (image left = right lung); each is
    cut into thirds between its top and bottom rows.
    """
    m = as_maps(lung_mask, "lung_mask")[0] != 0
    h, w = m.shape
    zones = torch.zeros(6, h, w, dtype=torch.bool)
    rows = torch.arange(h)[:, None]
    cols = torch.arange(w)[None, :]
    for side, half in enumerate((cols < w // 2, cols >= w // 2)):
        lung = m & half
        present = lung.any(1).nonzero()
        if len(present) == 0:
            continue
        top, bottom = int(present.min()), int(present.max()) + 1
        cuts = np.linspace(top, bottom, 4)
        for third in range(3):
            band = (rows >= cuts[third]) & (rows < cuts[third + 1])
            zones[3 * side + third] = lung & band
    return zones


def severity_map(zones: np.ndarray | torch.Tensor, scores: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Paint each pixel with its zone's score: ``zones`` bool ``(6, H, W)``, ``scores`` ``(6,)``
    -> float ``(H, W)`` (0 outside the lungs)."""
    z = torch.as_tensor(np.asarray(zones)).bool()
    s = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if z.dim() != 3 or s.shape != (z.shape[0],):
        raise InputShapeError(f"zones must be (Z, H, W) and scores (Z,), got {tuple(z.shape)} and {tuple(s.shape)}")
    return (z.double() * s[:, None, None]).sum(0)


def severity_correlation(
    maps: np.ndarray | torch.Tensor,
    zones: np.ndarray | torch.Tensor,
    scores: np.ndarray | torch.Tensor,
    within_lungs: bool = False,
) -> torch.Tensor:
    """Pearson correlation between each map and its painted severity map.

    Args:
        maps: ``(B, 1, H, W)`` attribution maps.
        zones: ``(B, 6, H, W)`` (or ``(6, H, W)`` shared) zone masks.
        scores: ``(B, 6)`` (or ``(6,)``) zone scores.
        within_lungs: correlate over lung pixels only (default: over the whole image, pixels
            outside the lungs painted 0).

    Returns:
        float64 ``(B,)``.
    """
    m = as_maps(maps).double()
    z = torch.as_tensor(np.asarray(zones)).bool()
    s = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if z.dim() == 3:
        z = z.expand(len(m), *z.shape)
    if s.dim() == 1:
        s = s.expand(len(m), -1)
    if z.shape[0] != len(m) or z.shape[-2:] != m.shape[-2:]:
        raise InputShapeError(f"zones {tuple(z.shape)} do not match maps {tuple(m.shape)}")
    out = torch.empty(len(m), dtype=torch.float64)
    for i in range(len(m)):  # one iteration per image
        painted = severity_map(z[i], s[i])
        if within_lungs:
            inside = z[i].any(0)
            out[i] = pearson(m[i][inside], painted[inside])
        else:
            out[i] = pearson(m[i].reshape(-1), painted.reshape(-1))
    return out
