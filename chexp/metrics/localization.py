"""Localization metrics: IoU of a top-p binarised map with a ground-truth mask, pointing game,
boxes as masks, and summaries (mean, std, bootstrap confidence interval).

IoU follows the Gifsplanation paper (section 3.4, after Viviano et al. 2020): the map keeps its
``p`` highest pixels, ``p`` = the number of pixels in the ground-truth mask, so the binarised map
and the mask have the same area.

Ties at the cut do not depend on where they lie in the image. Maps with plateaus (Grad-CAM's
zeros after its ReLU, the zeros of a masked Multi-layer IBA map) often have more pixels of the
cut value than slots left; :func:`top_k_weights` gives each of them the same fractional credit
(slots left / tied pixels), the mean of the top-``p`` mask over all orders of the tied pixels,
and :func:`iou` is computed on it. A binary (two-valued) map, such as Multi-layer IBA's Eq. 7
intersection, is already a segmentation: :func:`iou` takes its higher value as the region, as is.
Where a hard mask is needed (:func:`top_k_mask`), ties are broken at random by a seeded
generator.

:func:`in_mask_fraction` needs no binarisation: the share of a map's mass (``|map|``, or its
positive part) that lies inside a mask, ``sum(mass * mask) / sum(mass)``, to be read against the
mask's share of the image (what a map spread evenly gets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputShapeError, InvalidParameterError, UnknownNameError
from ._util import as_maps

#: Seed of the tie-breaking order when no generator is given (results are reproducible).
TIE_SEED = 0


def _per_map(k: int | torch.Tensor, b: int, n: int) -> torch.Tensor:
    """``k`` as a long ``(B, 1)`` tensor; raises when it is outside ``[0, n]``."""
    kk = torch.as_tensor(k).reshape(-1, 1).expand(b, 1).long()
    if kk.numel() and (kk.min() < 0 or kk.max() > n):
        raise InvalidParameterError(f"k must lie in [0, {n}] (pixels of a map), got {kk.flatten().tolist()}")
    return kk


def random_tie_order(flat: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices that sort each row of ``flat`` ``(B, N)`` from its highest value down, equal
    values in a random order drawn from ``generator`` (default: seeded with :data:`TIE_SEED`).

    Returns:
        long ``(B, N)`` on ``flat``'s device.
    """
    gen = torch.Generator().manual_seed(TIE_SEED) if generator is None else generator
    perm = torch.rand(flat.shape, generator=gen, device=gen.device).argsort(dim=1).to(flat.device)
    idx = torch.sort(flat.gather(1, perm), dim=1, descending=True, stable=True).indices
    return perm.gather(1, idx)


def top_k_mask(
    maps: torch.Tensor | np.ndarray, k: int | torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Keep the ``k`` highest pixels of each map; tied pixels at the cut are drawn at random.

    Args:
        maps: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``.
        k: pixels to keep, one int for all maps or a ``(B,)`` tensor, in ``[0, H * W]``.
        generator: draws the order of tied pixels (CPU generator; default seeded with
            :data:`TIE_SEED`, so the mask is reproducible).

    Returns:
        bool ``(B, H, W)``.
    """
    m = as_maps(maps)
    b, h, w = m.shape
    kk = _per_map(k, b, h * w)
    order = random_tie_order(m.reshape(b, -1), generator)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(h * w).expand(b, -1).contiguous())
    return (ranks < kk).reshape(b, h, w)


def top_k_weights(maps: torch.Tensor | np.ndarray, k: int | torch.Tensor) -> torch.Tensor:
    """The ``k`` highest pixels of each map with fractional credit for ties at the cut.

    Pixels above the ``k``-th highest value weigh 1; the ``g`` pixels equal to it share the
    ``r`` slots left, ``r / g`` each; the rest weigh 0. Each weight is the probability that the
    pixel is in the top ``k`` when ties are broken uniformly at random, so the weights sum to
    ``k`` and do not depend on where in the image the tied pixels lie.

    Args:
        maps: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``.
        k: pixels to keep, one int for all maps or a ``(B,)`` tensor, in ``[0, H * W]``.

    Returns:
        float64 ``(B, H, W)`` in [0, 1].
    """
    m = as_maps(maps)
    b, h, w = m.shape
    kk = _per_map(k, b, h * w)
    flat = m.reshape(b, -1).double()
    cut = torch.sort(flat, dim=1, descending=True).values.gather(1, (kk - 1).clamp_min(0))
    above = flat > cut
    tied = flat == cut
    left = (kk - above.sum(1, keepdim=True)).double()
    weights = above.double() + tied.double() * left / tied.sum(1, keepdim=True).clamp_min(1)
    return torch.where(kk > 0, weights, torch.zeros_like(weights)).reshape(b, h, w)


def _two_valued(maps: torch.Tensor) -> torch.Tensor:
    """Which maps ``(B, H, W)`` take exactly two values: bool ``(B,)``."""
    flat = maps.reshape(len(maps), -1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat == lo) | (flat == hi)).all(1) & (lo[:, 0] < hi[:, 0])


def iou(
    maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray, binary_as_is: bool = True
) -> torch.Tensor:
    """IoU of each map, binarised to its top-``p`` pixels (``p`` = mask area), with its mask.

    Ties at the cut get fractional credit (:func:`top_k_weights`): the intersection is its mean
    over uniformly random tie-breaks and the union is ``p + p - intersection`` (the binarised map
    has ``p`` pixels whatever the tie-break), so the value depends neither on the order of the
    pixels nor on a seed; flipping a map together with its mask leaves it unchanged.

    Args:
        maps: attribution maps ``(B, 1, H, W)`` (or ``(B, H, W)``, ``(H, W)``); higher = more
            important. Take ``abs`` first for signed methods if that is what is meant.
        masks: ground-truth masks of the same shape (nonzero = inside).
        binary_as_is: a map with exactly two values is a segmentation already: its region (the
            higher value) is compared with the mask as it is, whatever its area. ``False``
            binarises it to ``p`` pixels like any other map.

    Returns:
        float64 ``(B,)`` in [0, 1]; NaN for an empty mask.
    """
    m, g = as_maps(maps), as_maps(masks, "masks") != 0
    if m.shape != g.shape:
        raise InputShapeError(f"maps {tuple(m.shape)} and masks {tuple(g.shape)} differ in shape")
    b = len(g)
    p = g.reshape(b, -1).sum(1)
    top = top_k_weights(m, p)
    if binary_as_is:
        regions = (m == m.reshape(b, -1).max(1).values[:, None, None]).double()
        top = torch.where(_two_valued(m)[:, None, None], regions, top)
    inter = (top * g).reshape(b, -1).sum(1)
    union = top.reshape(b, -1).sum(1) + p.double() - inter
    return torch.where(p > 0, inter / union.clamp_min(1e-12), torch.full_like(inter, float("nan")))


def pointing_game(
    maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray, tolerance: int = 0
) -> torch.Tensor:
    """Pointing game (Zhang et al. 2018): is each map's maximum inside its mask?

    When several pixels share the maximum (a plateau, a binary or saturated map) the score is the
    fraction of them inside the mask: the expected hit of a uniformly random choice among them,
    so that the result does not depend on where in the image the tie lies (the first maximum in
    row-major order would favour masks near the top). ``tolerance`` (pixels) grows the mask by a
    square dilation first (Zhang et al. use 15 px at 224).

    Returns:
        float ``(B,)`` in [0, 1]: 1 or 0 for a unique maximum.
    """
    m, g = as_maps(maps), as_maps(masks, "masks") != 0
    if m.shape != g.shape:
        raise InputShapeError(f"maps {tuple(m.shape)} and masks {tuple(g.shape)} differ in shape")
    if tolerance > 0:
        g = torch.nn.functional.max_pool2d(g[:, None].float(), 2 * tolerance + 1, 1, tolerance)[:, 0] > 0
    flat, inside = m.reshape(len(m), -1), g.reshape(len(g), -1)
    top = flat == flat.max(1, keepdim=True).values
    return (top & inside).sum(1).double() / top.sum(1).double()


#: How :func:`in_mask_fraction` turns a signed map into a mass: ``"absolute"``, ``|map|``
#: (negative evidence counts too); ``"positive"``, ``max(map, 0)`` (evidence for the target only).
MASS_MODES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "absolute": torch.abs,
    "positive": lambda m: m.clamp_min(0.0),
}


def in_mask_fraction(
    maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray, mode: str = "absolute"
) -> np.ndarray:
    """The share of each map's mass inside its mask, ``sum(mass * mask) / sum(mass)``.

    Over the regions of a partition of the image the shares add up to 1; a map spread evenly gets
    the mask's share of the image.

    Args:
        maps: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``, any sign (an attribution map, or the
            change a counterfactual makes to the image).
        masks: the same shape, bool or {0, 1} (nonzero = inside).
        mode: a key of :data:`MASS_MODES`.

    Returns:
        float64 ``(B,)`` in [0, 1]; NaN for a map without mass.

    Raises:
        UnknownNameError: an unknown ``mode``.
        InputShapeError: ``maps`` and ``masks`` differ in shape.
    """
    if mode not in MASS_MODES:
        raise UnknownNameError(mode, MASS_MODES, "mass mode")
    m, g = as_maps(maps), as_maps(masks, "masks") != 0
    if m.shape != g.shape:
        raise InputShapeError(f"maps {tuple(m.shape)} and masks {tuple(g.shape)} differ in shape")
    mass = MASS_MODES[mode](m.reshape(len(m), -1).double())
    return ((mass * g.reshape(len(g), -1).double()).sum(1) / mass.sum(1)).numpy()


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
