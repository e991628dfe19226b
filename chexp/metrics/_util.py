"""Small shared helpers of the metrics (shape handling, correlations)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputShapeError


def as_maps(x: torch.Tensor | np.ndarray, name: str = "maps") -> torch.Tensor:
    """``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` -> float tensor ``(B, H, W)``."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dim() == 2:
        t = t[None]
    elif t.dim() == 4:
        if t.shape[1] != 1:
            raise InputShapeError(f"{name} must have one channel, got shape {tuple(t.shape)}")
        t = t[:, 0]
    elif t.dim() != 3:
        raise InputShapeError(f"{name} must be (H, W), (B, H, W) or (B, 1, H, W), got {tuple(t.shape)}")
    return t.detach().cpu()


def pearson(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Pearson correlation along ``dim`` (NaN where either side is constant)."""
    a = a.double() - a.double().mean(dim, keepdim=True)
    b = b.double() - b.double().mean(dim, keepdim=True)
    den = torch.sqrt((a * a).sum(dim) * (b * b).sum(dim))
    num = (a * b).sum(dim)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, float("nan")))


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks (1-based, ties get their average rank) along the last dimension."""
    n = x.shape[-1]
    flat = x.reshape(-1, n).double()
    out = torch.empty_like(flat)
    for i, row in enumerate(flat):  # one row per map: a loop over maps, not pixels
        values, inverse, counts = torch.unique(row, sorted=True, return_inverse=True, return_counts=True)
        ends = torch.cumsum(counts, 0).double()
        starts = ends - counts.double() + 1
        out[i] = ((starts + ends) / 2)[inverse]
    return out.reshape(x.shape)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation along the last dimension (average ranks for ties)."""
    return pearson(average_ranks(a), average_ranks(b))
