"""How robust the attribution maps are to degraded inputs: Gifsplanation Appendix G (Fig. G.1).

The paper adds random noise "at different scales" to 80 images per task, and separately blurs
them, and plots each method's IoU with the (clean) finding mask against the scale. The released
code (``gif-iou-robust.ipynb`` of mlmed/gifsplanation) does:

* noise: ``x + torch.rand(x.shape) * s`` (uniform in ``[0, s)``, so it also brightens the image)
  for ``s`` in 0, 1000, 2000, 3000, 4000, on images in [-1024, 1024], not clipped;
* blur: ``skimage.filters.gaussian(x, sigma=(s, s), mode="constant", truncate=3.5)`` (zero
  padding: mid-grey) for ``s`` in 0, 10, 20, 30, 40 pixels of the 224-pixel images;
* the masks stay those of the clean image; every positive image is used (no prediction threshold).

:data:`PERTURBATIONS` implements both. They differ from the released code in one point: the noisy
image is clipped to [-1024, 1024], because chexp's models (rightly) refuse inputs outside the
range. The blur's ``sigma`` is given in pixels of a 224-pixel image and scaled to the images'
side, so that the same value blurs a 128-pixel phantom as much, relative to its size, as the
paper's radiographs. :func:`robustness_iou` runs the one IoU pipeline of Table 1
(:func:`chexp.experiments.iou.compute_iou`) on the perturbed images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import torch
from scipy.ndimage import gaussian_filter

from ..errors import InvalidParameterError, UnknownNameError
from ..models.base import Autoencoder, Classifier
from ..profiles import SampleSet
from ..validation import XRV_MAX, XRV_MIN
from .iou import compute_iou

__all__ = ["PAPER_SCALES", "PERTURBATIONS", "Perturbation", "gaussian_blur", "robustness_iou", "uniform_noise"]

#: Side of the images the released code blurred (torchxrayvision's 224 x 224).
REFERENCE_SIDE = 224
#: ``truncate`` of the released code's ``skimage.filters.gaussian`` call.
BLUR_TRUNCATE = 3.5


def uniform_noise(images: torch.Tensor, scale: float, seed: int = 0) -> torch.Tensor:
    """``images + U[0, 1) * scale``, clipped to [-1024, 1024] (the released code's noise, clipped).

    Args:
        images: ``(B, 1, H, W)`` in [-1024, 1024].
        scale: noise amplitude in intensity units (>= 0; 0 returns ``images`` unchanged).
        seed: seed of the noise; the same seed draws the same ``U`` for every scale, so that
            the scales differ only in amplitude.

    Returns:
        ``(B, 1, H, W)`` in [-1024, 1024], on ``images``' device.
    """
    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.rand(images.shape, generator=generator, dtype=torch.float32).to(images.device, images.dtype)
    return (images + noise * float(scale)).clamp(XRV_MIN, XRV_MAX)


def gaussian_blur(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Gaussian blur with zero (mid-grey) padding, as the released code's
    ``skimage.filters.gaussian(mode="constant", truncate=3.5)``.

    Args:
        images: ``(B, 1, H, W)`` in [-1024, 1024].
        sigma: standard deviation in pixels of a 224-pixel image (the released code's unit),
            scaled by ``W / 224`` to the images' side (>= 0; 0 returns ``images`` unchanged).
        seed: unused (the blur is deterministic); part of the :data:`Perturbation` signature.

    Returns:
        ``(B, 1, H, W)`` in [-1024, 1024], on ``images``' device.
    """
    pixels = float(sigma) * images.shape[-1] / REFERENCE_SIDE
    planes = images.detach().cpu().double().numpy()
    blurred = gaussian_filter(planes, sigma=(0, 0, pixels, pixels), mode="constant", cval=0.0,
                              truncate=BLUR_TRUNCATE)
    return torch.from_numpy(blurred).to(images.device, images.dtype)


@dataclass(frozen=True)
class Perturbation:
    """One way of degrading the input (a row of Fig. G.1).

    Attributes:
        name: its name in tables (``"noise"``, ``"blur"``).
        apply: ``(images (B, 1, H, W), scale, seed) -> images``, the identity at scale 0.
        label: the x-axis label of its plot.
    """

    name: str
    apply: Callable[[torch.Tensor, float, int], torch.Tensor]
    label: str


#: The perturbations of Fig. G.1 by name: top row random noise, bottom row Gaussian blur.
PERTURBATIONS: dict[str, Perturbation] = {
    "noise": Perturbation("noise", uniform_noise, "image + U[0, 1) x scale (intensity units)"),
    "blur": Perturbation("blur", gaussian_blur, "Gaussian blur sigma (pixels at 224 px)"),
}

#: The released code's scales: noise amplitudes, blur sigmas in pixels at 224.
PAPER_SCALES: dict[str, tuple[float, ...]] = {"noise": (0, 1000, 2000, 3000, 4000), "blur": (0, 10, 20, 30, 40)}


def robustness_iou(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    samples_by_task: Mapping[str, SampleSet],
    scales: Mapping[str, Sequence[float]],
    device: str | torch.device = "cpu",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """Table 1's IoU (:func:`~chexp.experiments.iou.compute_iou`) of each method on perturbed
    copies of each task's images, against the clean masks (paper Fig. G.1).

    A scale of 0 leaves the images unchanged for every perturbation: its rows are those of the
    clean images, computed once and repeated under each perturbation.

    Args:
        methods: slugs of :data:`chexp.methods.METHODS` (the paper: grad, guided, integrated,
            latentshift-max).
        samples_by_task: task -> positive images with masks (:class:`~chexp.profiles.SampleSet`).
        scales: perturbation name (a key of :data:`PERTURBATIONS`) -> its scales (>= 0), e.g.
            :data:`PAPER_SCALES`.
        settings: per-method keyword arguments (as for :func:`~chexp.experiments.iou.compute_iou`).
        seed: seed of the noise (task ``k`` of ``samples_by_task`` uses ``seed + k``).

    Returns:
        :func:`~chexp.experiments.iou.compute_iou`'s columns (``task``, ``method``, ``sample``,
        ``iou``, ``mask_pixels``, ``prediction``: the prediction on the perturbed image) after
        ``perturbation`` and ``scale``; rows by perturbation, then scale in the order given.

    Raises:
        UnknownNameError: a perturbation that is not in :data:`PERTURBATIONS`.
        InvalidParameterError: a negative scale, or a perturbation without scales.
    """
    for name, values in scales.items():
        if name not in PERTURBATIONS:
            raise UnknownNameError(name, PERTURBATIONS, "perturbation")
        if len(values) == 0 or min(float(v) for v in values) < 0:
            raise InvalidParameterError(f"scales[{name!r}] must be a non-empty list of values >= 0, got {list(values)}")

    def run(samples: Mapping[str, SampleSet]) -> pd.DataFrame:
        return compute_iou(methods, classifier, autoencoder, samples, device, settings, batch_size, progress)

    clean: pd.DataFrame | None = None
    tables = []
    for name, values in scales.items():
        perturbation = PERTURBATIONS[name]
        for scale in values:
            if float(scale) == 0:
                clean = run(samples_by_task) if clean is None else clean
                table = clean.copy()
            else:
                table = run({task: replace(s, images=perturbation.apply(s.images, float(scale), seed + k))
                             for k, (task, s) in enumerate(samples_by_task.items())})
            table.insert(0, "scale", float(scale))
            table.insert(0, "perturbation", name)
            tables.append(table)
    return pd.concat(tables, ignore_index=True)

