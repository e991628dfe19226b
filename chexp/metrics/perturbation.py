"""Perturbation metrics: insertion/deletion curves (Petsiuk et al. 2018) and sensitivity-N
(Ancona et al. 2018), as in CheXplain-IBA Fig. 2 and 3b.

Both are fully batched: the perturbed images of one original are built by broadcasting a
per-pixel rank map against a vector of thresholds (no per-pixel Python loop) and scored
``batch_size`` at a time. Pixels of equal attribution are perturbed in a random order drawn from
a seeded generator, so plateaus (Grad-CAM's zeros, binary maps) are not taken in row-major order.

Options that reproduce the released CheXplain-IBA evaluation: ``max_fraction=0.5`` (it perturbs
only the most important half of the pixels) in :func:`perturbation_curves`, and, in
:func:`sensitivity_n`, its mask sizes (:func:`default_sensitivity_ns`) and ``nan_as_zero``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputShapeError, InvalidParameterError
from ..models.base import Classifier
from ..progress import tqdm
from ..targets import Target, as_target
from ._util import pearson
from .localization import random_tie_order

Baseline = float | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GaussianBlur:
    """The blurred copy used as the insertion/deletion baseline (reference: sigma 10, kernel 19)."""

    sigma: float = 10.0
    kernel_size: int = 19

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        import torchvision.transforms.functional as TF  # torchvision costs seconds to import: only here

        return TF.gaussian_blur(images, [self.kernel_size, self.kernel_size], [self.sigma, self.sigma])


def _baseline_images(baseline: Baseline, images: torch.Tensor) -> torch.Tensor:
    if callable(baseline):
        out = baseline(images)
    else:
        out = torch.as_tensor(baseline, dtype=images.dtype, device=images.device)
    return torch.broadcast_to(out, images.shape).to(images.dtype)


def pixel_ranks(maps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rank of each pixel in its map ``(B, 1, H, W)``, 0 = most important; equal values in a
    random order drawn from ``generator`` (default: seeded, see
    :func:`~chexp.metrics.localization.random_tie_order`). Returns long ``(B, 1, H, W)``."""
    b = maps.shape[0]
    flat = maps.reshape(b, -1)
    order = random_tie_order(flat, generator)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=maps.device).expand(b, -1).contiguous())
    return ranks.reshape(maps.shape)


@dataclass(frozen=True)
class PerturbationCurves:
    """Insertion or deletion curves.

    Attributes:
        fractions: ``(S,)`` fraction of pixels inserted/deleted at each point, 0 to
            ``max_fraction``.
        scores: ``(B, S)`` target score at each point.
        auc: ``(B,)`` area under each curve (trapezoid over ``fractions``) divided by the
            fraction of pixels the curve covers: the mean score over the perturbed range (the
            plain area when every pixel is perturbed).
        mode: ``"insertion"`` or ``"deletion"``.
    """

    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    mode: str


def _check(model: Classifier, images: torch.Tensor, maps: torch.Tensor, target: object) -> Target:
    tgt = as_target(target)  # type: ignore[arg-type]
    tgt.index(model)
    model.check_input(images)
    if maps.shape != images.shape:
        raise InputShapeError(f"maps {tuple(maps.shape)} must have the images' shape {tuple(images.shape)}")
    return tgt


def perturbation_curves(
    model: Classifier,
    images: torch.Tensor,
    maps: torch.Tensor,
    target: str | int | Target,
    mode: str = "deletion",
    pixels_per_step: int = 25,
    baseline: Baseline = GaussianBlur(),
    batch_size: int = 64,
    max_steps: int | None = None,
    progress: bool = True,
    max_fraction: float = 1.0,
    generator: torch.Generator | None = None,
) -> PerturbationCurves:
    """Insertion or deletion curves of the target score.

    Deletion starts from the image and replaces its most important pixels (by ``maps``) with
    the baseline, ``pixels_per_step`` at a time; insertion starts from the baseline and puts the
    image's most important pixels back. With ``L = floor(max_fraction * H * W)`` pixels to
    change, point ``s`` has ``min(s * pixels_per_step, L)`` pixels changed, for
    ``s = 0 .. ceil(L / pixels_per_step)``.

    Args:
        model: classifier; scores of the kind ``model.output`` names.
        images: ``(B, 1, H, W)`` in [-1024, 1024].
        maps: attribution maps of the same shape (higher = more important).
        target: output name, index or target object.
        mode: ``"deletion"`` or ``"insertion"``.
        pixels_per_step: pixels changed per step (default 25).
        baseline: a value, an image tensor, or a callable ``images -> baseline images``
            (default :class:`GaussianBlur` with sigma 10).
        batch_size: perturbed images per forward pass.
        max_steps: compute only the first ``max_steps + 1`` points (for benchmarks); the AUC is
            then over the computed fractions only.
        progress: progress bar over batches.
        max_fraction: share of the pixels to change, in (0, 1] (default 1: every pixel; the
            released CheXplain-IBA code changes the most important half, 0.5). The AUC is
            divided by it.
        generator: draws the order of equally important pixels (CPU generator; default seeded,
            the same order on every call).
    """
    if mode not in ("deletion", "insertion"):
        raise InvalidParameterError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if pixels_per_step < 1:
        raise InvalidParameterError(f"pixels_per_step must be >= 1, got {pixels_per_step}")
    tgt = _check(model, images, maps, target)
    b = images.shape[0]
    n_pix = images[0].numel()
    limit = int(max_fraction * n_pix)
    if not 0 < max_fraction <= 1 or limit < 1:
        raise InvalidParameterError(
            f"max_fraction must lie in (0, 1] and cover at least one of the {n_pix} pixels, got {max_fraction}"
        )
    n_steps = -(-limit // pixels_per_step)
    if max_steps is not None:
        n_steps = min(n_steps, max_steps)
    counts = torch.clamp(torch.arange(n_steps + 1) * pixels_per_step, max=limit)
    base = _baseline_images(baseline, images)
    ranks = pixel_ranks(maps.detach(), generator)
    # deletion: pixel shows baseline once changed; insertion: pixel shows image once changed
    start, end = (images, base) if mode == "deletion" else (base, images)
    scores = torch.empty(b, n_steps + 1, dtype=torch.float64)
    total = b * (n_steps + 1)
    with torch.no_grad(), tqdm(total=total, disable=not progress, desc=mode) as bar:
        for i in range(b):
            for s0 in range(0, n_steps + 1, batch_size):
                c = counts[s0 : s0 + batch_size].to(images.device).view(-1, 1, 1, 1)
                changed = ranks[i : i + 1] < c  # (n, 1, H, W)
                batch = torch.where(changed, end[i : i + 1], start[i : i + 1])
                scores[i, s0 : s0 + len(c)] = tgt(model(batch), model).double().cpu()
                bar.update(len(c))
    fractions = (counts.double() / n_pix).numpy()
    sc = scores.numpy()
    auc = np.trapezoid(sc, fractions, axis=1) / (limit / n_pix) if len(fractions) > 1 else np.zeros(b)
    return PerturbationCurves(fractions, sc, auc, mode)


def deletion(
    model: Classifier, images: torch.Tensor, maps: torch.Tensor, target: str | int | Target, **kwargs: object
) -> PerturbationCurves:
    """Deletion curves (lower AUC = better map); see :func:`perturbation_curves`."""
    return perturbation_curves(model, images, maps, target, mode="deletion", **kwargs)  # type: ignore[arg-type]


def insertion(
    model: Classifier, images: torch.Tensor, maps: torch.Tensor, target: str | int | Target, **kwargs: object
) -> PerturbationCurves:
    """Insertion curves (higher AUC = better map); see :func:`perturbation_curves`."""
    return perturbation_curves(model, images, maps, target, mode="insertion", **kwargs)  # type: ignore[arg-type]


#: Pixels of the images the released CheXplain-IBA code evaluates (224 x 224).
RELEASED_PIXELS = 224 * 224


def default_sensitivity_ns(n_pixels: int, points: int = 50, max_exponent: float | None = None) -> np.ndarray:
    """Mask sizes ``n`` of the released CheXplain-IBA code, scaled to the image.

    The released code evaluates ``int(n)`` for each ``n`` of ``logspace(0, 4.7, 50)`` at
    224 x 224: truncated, repeated small sizes included (1, 1, 1, 1, 2, 3, 3, ...), the largest
    10^4.7 = 99.9 % of the pixels. Here the largest size is the same share of ``n_pixels``
    (``max_exponent = 4.7 + log10(n_pixels / 224^2)``), so every one of the ``points`` sizes is
    used at any image size; at 224 x 224 and 50 points the list is the released one.

    Args:
        n_pixels: pixels of an image.
        points: number of sizes (released: 50).
        max_exponent: ``log10`` of the largest size; default: scaled as above.

    Returns:
        int ``(points,)``, non-decreasing, in ``[1, n_pixels]``.
    """
    top = 4.7 + np.log10(n_pixels / RELEASED_PIXELS) if max_exponent is None else max_exponent
    return np.clip(np.logspace(0, top, points).astype(int), 1, n_pixels)


@dataclass(frozen=True)
class SensitivityN:
    """Sensitivity-N results.

    Attributes:
        ns: ``(K,)`` mask sizes.
        correlation: ``(B, K)`` Pearson correlation, over the random masks of size ``n``, between
            the score drop ``f(x) - f(x with the mask set to the baseline)`` and the sum of the
            map over the mask (an undefined one 0 or NaN, see ``nan_as_zero``).
        score_drop: ``(B, K, M)``; attribution_sum: ``(B, K, M)`` (the correlated quantities).
    """

    ns: np.ndarray
    correlation: np.ndarray
    score_drop: np.ndarray
    attribution_sum: np.ndarray


def sensitivity_n(
    model: Classifier,
    images: torch.Tensor,
    maps: torch.Tensor,
    target: str | int | Target,
    ns: np.ndarray | list[int] | None = None,
    n_masks: int = 30,
    baseline: Baseline = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    nan_as_zero: bool = True,
) -> SensitivityN:
    """Sensitivity-N (Ancona et al. 2018) with random pixel subsets.

    Args:
        model, images, maps, target: as in :func:`perturbation_curves`.
        ns: mask sizes (default :func:`default_sensitivity_ns`: the released code's 50 sizes,
            scaled to the image); a size given twice gets its own masks each time.
        n_masks: random masks per ``n`` (default 30).
        baseline: value written into masked pixels (default 0, as in CheXplain-IBA), an image,
            or a callable.
        batch_size: perturbed images per forward pass.
        seed: seeds the masks (a ``torch.Generator``; the same masks for every image).
        nan_as_zero: a correlation that is undefined (the score drops or the map sums do not
            vary over the masks, e.g. a map that is zero wherever the masks fall) counts as 0,
            as in the released code (default). ``False`` leaves it NaN.
    """
    tgt = _check(model, images, maps, target)
    b = images.shape[0]
    n_pix = images[0].numel()
    ns_arr = default_sensitivity_ns(n_pix) if ns is None else np.asarray(ns, dtype=int)
    if ns_arr.size == 0 or ns_arr.min() < 1 or ns_arr.max() > n_pix:
        raise InvalidParameterError(f"ns (mask sizes) must be non-empty and lie in [1, {n_pix}], got {ns_arr}")
    gen = torch.Generator().manual_seed(seed)
    # n_masks random subsets of n pixels for each n: the first n of a random permutation
    masks = torch.zeros(len(ns_arr) * n_masks, n_pix, dtype=torch.bool)
    for j, n in enumerate(ns_arr):  # one iteration per mask size, not per pixel
        picks = torch.rand(n_masks, n_pix, generator=gen).argsort(dim=1)[:, : int(n)]
        masks[j * n_masks : (j + 1) * n_masks].scatter_(1, picks, True)
    # attribution sum of each mask for each image, (B, K*M), on the CPU whatever the maps' device
    attr = maps.detach().reshape(b, -1).double().cpu() @ masks.double().T
    masks = masks.view(-1, *images.shape[1:]).to(images.device)  # (K*M, 1, H, W)
    base = _baseline_images(baseline, images)
    drops = torch.empty(b, masks.shape[0], dtype=torch.float64)
    with torch.no_grad(), tqdm(total=b * masks.shape[0], disable=not progress, desc="sensitivity-N") as bar:
        for i in range(b):
            f0 = tgt(model(images[i : i + 1]), model).double().cpu()
            for s0 in range(0, masks.shape[0], batch_size):
                m = masks[s0 : s0 + batch_size]
                batch = torch.where(m, base[i : i + 1], images[i : i + 1])
                drops[i, s0 : s0 + len(m)] = f0 - tgt(model(batch), model).double().cpu()
                bar.update(len(m))
    k = len(ns_arr)
    d = drops.view(b, k, n_masks)
    a = attr.view(b, k, n_masks)
    corr = pearson(d, a)
    if nan_as_zero:
        corr = torch.nan_to_num(corr, nan=0.0)
    return SensitivityN(ns_arr, corr.numpy(), d.numpy(), a.numpy())
