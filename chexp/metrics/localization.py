"""Localization metrics: IoU of a top-p binarised map with a ground-truth mask, pointing game,
boxes as filled masks, and summaries (mean, std, bootstrap confidence interval).

IoU follows the Gifsplanation paper (section 3.4, after Viviano et al. 2020): the map keeps its
``p`` highest pixels, ``p`` = the number of pixels in the ground-truth mask, so the binarised map
and the mask have the same area. Ties are broken deterministically: among equal values the pixel
with the smaller row-major index ranks higher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputShapeError, InvalidParameterError
from ._util import as_maps


def top_k_mask(maps: torch.Tensor | np.ndarray, k: int | torch.Tensor) -> torch.Tensor:
    """Keep the ``k`` highest pixels of each map (ties: lower row-major index first).

    Args:
        maps: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``.
        k: pixels to keep, one int for all maps or a ``(B,)`` tensor.

    Returns:
        bool ``(B, H, W)``.
    """
    m = as_maps(maps)
    b, h, w = m.shape
    flat = m.reshape(b, -1)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(h * w).expand(b, -1).contiguous())
    kk = torch.as_tensor(k).reshape(-1, 1).expand(b, 1)
    return (ranks < kk).reshape(b, h, w)


def iou(maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray) -> torch.Tensor:
    """IoU of each map, binarised to its top-``p`` pixels (``p`` = mask area), with its mask.

    Args:
        maps: attribution maps ``(B, 1, H, W)`` (or ``(B, H, W)``, ``(H, W)``); higher = more
            important. Take ``abs`` first for signed methods if that is what is meant.
        masks: ground-truth masks of the same shape (nonzero = inside).

    Returns:
        float64 ``(B,)``; NaN for an empty mask.
    """
    m, g = as_maps(maps), as_maps(masks, "masks") != 0
    if m.shape != g.shape:
        raise InputShapeError(f"maps {tuple(m.shape)} and masks {tuple(g.shape)} differ in shape")
    p = g.reshape(g.shape[0], -1).sum(1)
    top = top_k_mask(m, p)
    inter = (top & g).reshape(len(g), -1).sum(1).double()
    union = (top | g).reshape(len(g), -1).sum(1).double()
    return torch.where(p > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))


def pointing_game(
    maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray, tolerance: int = 0
) -> torch.Tensor:
    """Pointing game (Zhang et al. 2018): is each map's maximum inside its mask?

    The maximum is the first maximal pixel in row-major order. ``tolerance`` (pixels) grows the
    mask by a square dilation first (Zhang et al. use 15 px at 224).

    Returns:
        bool ``(B,)``.
    """
    m, g = as_maps(maps), as_maps(masks, "masks") != 0
    if m.shape != g.shape:
        raise InputShapeError(f"maps {tuple(m.shape)} and masks {tuple(g.shape)} differ in shape")
    if tolerance > 0:
        g = torch.nn.functional.max_pool2d(g[:, None].float(), 2 * tolerance + 1, 1, tolerance)[:, 0] > 0
    flat = m.reshape(len(m), -1)
    idx = flat.argmax(1)  # first occurrence of the maximum
    return g.reshape(len(g), -1).gather(1, idx[:, None])[:, 0]


def box_to_mask(
    box: tuple[float, float, float, float], image_shape: tuple[int, int], size: int = 224
) -> torch.Tensor:
    """A box ``(x, y, width, height)`` in original-image pixels as a filled mask at model size.

    Same geometry as the image pipeline: torchxrayvision's ``XRayCenterCrop`` (square crop of
    side ``min(H, W)`` starting at ``W // 2 - side // 2``, ``H // 2 - side // 2``) then a resize
    to ``size``. An output pixel is filled when the source pixel nearest its center (the
    nearest-neighbour resize of a mask) lies in the box's pixel span ``[floor(x), ceil(x + w))``.
    Computed in closed form, without building the full-resolution mask.

    Returns:
        bool ``(size, size)``.
    """
    h, w = image_shape
    x, y, bw, bh = box
    side = min(h, w)
    sx, sy = w // 2 - side // 2, h // 2 - side // 2
    x0, x1 = max(np.floor(x), 0) - sx, min(np.ceil(x + bw), w) - sx
    y0, y1 = max(np.floor(y), 0) - sy, min(np.ceil(y + bh), h) - sy
    scale = side / size
    centers = (torch.arange(size, dtype=torch.float64) + 0.5) * scale - 0.5
    src = torch.clamp(torch.round(centers), 0, side - 1)
    cols = (src >= x0) & (src < x1)
    rows = (src >= y0) & (src < y1)
    return rows[:, None] & cols[None, :]


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation and a percentile bootstrap confidence interval of the mean."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float

    def __str__(self) -> str:
        return (
            f"{self.mean:.3f} ± {self.std:.3f} "
            f"({100 * self.confidence:.0f}% CI {self.ci_low:.3f}-{self.ci_high:.3f}, n={self.n})"
        )


def summarize(
    values: torch.Tensor | np.ndarray | list[float],
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    ddof: int = 1,
) -> Summary:
    """Summarise per-sample values (NaNs dropped): mean, standard deviation (``ddof=1`` by
    default, as pandas computes it) and a percentile bootstrap CI of the mean.

    All bootstrap resamples are drawn at once (``(n_bootstrap, n)`` indices), seeded.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise InvalidParameterError(
            f"values must hold at least one value that is not NaN, got {np.asarray(values).size} values"
        )
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_bootstrap, v.size))].mean(1)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    std = float(v.std(ddof=ddof)) if v.size > ddof else float("nan")
    return Summary(float(v.mean()), std, float(lo), float(hi), int(v.size), confidence)
