"""Severity-map correlation (CheXplain-IBA, BrixIA): paint every pixel with its lung zone's
score and correlate with an attribution map.

BrixIA zones (Borghesi and Maroldi, as CheXplain-IBA computes them): the mask's two lungs are
found as its two largest connected components (:func:`split_lungs`), so a rotated or off-centre
patient is split between the lungs, not at the image's midline; each lung is cut into thirds of
its own height, top to bottom (:func:`lung_thirds`). Zones A, B, C are the patient's right lung
(image *left*, radiological convention), D, E, F the left lung (image right).
"""

from __future__ import annotations

import numpy as np
import skimage.measure
import torch

from ..errors import InputShapeError, InvalidMaskError
from ._util import as_maps, pearson

ZONES = ("A", "B", "C", "D", "E", "F")
#: second-largest component must be at least this share of the largest to count as a lung
MIN_LUNG_RATIO = 0.2


def split_lungs(mask: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Split a 2-D lung mask ``(H, W)`` into ``(right_lung, left_lung)``, bool ``(H, W)`` each, in
    the *patient's* terms (the patient's right lung is on the image's left).

    With two large connected components (the second at least :data:`MIN_LUNG_RATIO` of the
    first), each is a lung, ordered by centroid column, and smaller fragments join the lung on
    their side of the midpoint between the two centroids. With one large component (lungs
    touching), the mask is cut at the column of least mask between 30 % and 70 % of its width.

    Raises:
        InvalidMaskError: the mask is not 2-D, is empty, or one side of the cut is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise InvalidMaskError(f"lung mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        raise InvalidMaskError("lung mask is empty")
    labels = skimage.measure.label(mask, connectivity=2)
    props = sorted(skimage.measure.regionprops(labels), key=lambda p: -p.area)
    cols = np.arange(mask.shape[1])
    if len(props) >= 2 and props[1].area >= MIN_LUNG_RATIO * props[0].area:
        first, second = sorted(props[:2], key=lambda p: p.centroid[1])
        cut = (first.centroid[1] + second.centroid[1]) / 2
        image_left = labels == first.label
        for p in props[2:]:
            if p.centroid[1] < cut:
                image_left |= labels == p.label
        image_right = mask & ~image_left
    else:
        column_sum = mask.sum(axis=0)
        filled = np.flatnonzero(column_sum)
        x0, x1 = filled[0], filled[-1]
        lo, hi = x0 + int(0.3 * (x1 - x0)), x0 + int(np.ceil(0.7 * (x1 - x0)))
        cut = lo + int(np.argmin(column_sum[lo : hi + 1]))
        image_left = mask & (cols[None, :] < cut)
        image_right = mask & (cols[None, :] >= cut)
    if not image_left.any() or not image_right.any():
        raise InvalidMaskError("lung mask has only one lung")
    return image_left, image_right


def lung_thirds(lung: np.ndarray | torch.Tensor) -> np.ndarray:
    """Cut one lung ``(H, W)`` into thirds of its own height: bool ``(3, H, W)``, top to bottom.

    Row ``r`` of a lung spanning rows ``r0..r1`` goes to third ``floor(3 (r - r0) / (r1 - r0 + 1))``.
    """
    lung = np.asarray(lung, dtype=bool)
    rows = np.flatnonzero(lung.any(axis=1))
    r0, height = rows[0], rows[-1] - rows[0] + 1
    band = np.full(lung.shape[0], -1)
    band[r0 : r0 + height] = (np.arange(height) * 3) // height
    return np.stack([lung & (band == k)[:, None] for k in range(3)])


def brixia_zones(lung_mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The six BrixIA zones of a two-lung mask ``(H, W)`` (or ``(1, H, W)``, ``(1, 1, H, W)``):
    bool ``(6, H, W)`` in the order A..F.

    A-C: the patient's right lung (image left), upper to lower third; D-F: the left lung. The
    lungs are the mask's two components (:func:`split_lungs`), each cut into thirds of its own
    height (:func:`lung_thirds`).

    Raises:
        InvalidMaskError: the mask is empty or holds one lung only.
    """
    maps = as_maps(lung_mask, "lung_mask")
    if len(maps) != 1:
        raise InputShapeError(f"brixia_zones takes one lung mask, got {len(maps)}")
    right, left = split_lungs(maps[0].numpy() != 0)
    return torch.from_numpy(np.concatenate([lung_thirds(right), lung_thirds(left)]))


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
