"""The prediction along the latent shift: Gifsplanation Fig. 1c, Fig. 3 and Appendix C.

* :func:`prediction_curves` (Fig. 3): the prediction of each task along its own latent shift,
  for several classifiers (:func:`classifiers_for`) sharing one autoencoder, on per-task lambda
  ranges (:func:`lambda_ranges`); frames and curves in a :class:`ShiftGrid`.
* :func:`dense_curve` (Fig. 1c, App. C): the prediction on a dense lambda grid
  (:func:`lambda_grid`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import InputShapeError, InvalidParameterError
from ..latentshift import LatentShift
from ..latentshift.search import FixedRange, LambdaSearch
from ..models.base import Autoencoder, Classifier

__all__ = [
    "PROFILE_CLASSIFIERS",
    "ShiftGrid",
    "classifiers_for",
    "dense_curve",
    "lambda_grid",
    "lambda_ranges",
    "prediction_curves",
]

#: The classifiers each profile compares (Fig. 3, Table 1); profiles not listed use their own.
PROFILE_CLASSIFIERS: dict[str, tuple[str, ...]] = {
    "paper": ("densenet121-res224-all", "densenet121-res224-mimic_ch", "jfhealthcare"),
}


def classifiers_for(profile: Any, names: Sequence[str] | None = None, output: str = "probability",
                    device: str | torch.device = "cpu") -> dict[str, Classifier]:
    """Classifiers by name (:func:`chexp.models.zoo.load_classifier`), on ``device``, in eval mode.

    ``names=None`` gives :data:`PROFILE_CLASSIFIERS` of the profile, or else the profile's own
    classifier (named after the profile).
    """
    from ..models.zoo import load_classifier

    if names is None:
        names = PROFILE_CLASSIFIERS.get(profile.name)
    if names is None:
        return {profile.name: profile.classifier(output).to(device).eval()}
    return {n: load_classifier(n, output=output).to(device).eval() for n in names}


@dataclass
class ShiftGrid:
    """Frames and predictions of several (model, task) pairs on a common number of lambda steps.

    Each task has its own lambda grid (shared by the models): tasks differ in how far the latent
    must move, and a grid wide enough for one task walks another far off the data.

    Attributes:
        lambdas: task -> ``(L,)``; frames: (model, task) -> ``(L, H, W)``; curves: long table with
        columns ``model``, ``task``, ``step``, ``lambda``, ``prediction``, ``initial``.
    """

    lambdas: dict[str, np.ndarray]
    frames: dict[tuple[str, str], np.ndarray]
    curves: pd.DataFrame

    @property
    def n_steps(self) -> int:
        return len(next(iter(self.lambdas.values())))


def lambda_ranges(
    classifiers: Mapping[str, Classifier], autoencoder: Autoencoder, image: torch.Tensor, tasks: Sequence[str],
    search: str | LambdaSearch | None = None, margin: float = 1.5,
) -> dict[str, tuple[float, float]]:
    """Per task, a lambda range covering every model's searched bounds, widened by ``margin``."""
    out = {}
    for task in tasks:
        lows, highs = [], []
        for clf in classifiers.values():
            if task not in clf.targets:
                continue
            e = LatentShift(clf, autoencoder, search=search, n_frames=2).explain(image[:1], task)
            lows.append(float(e.bounds[0, 0]))
            highs.append(float(e.bounds[0, 1]))
        if lows:
            out[task] = (margin * min(lows), margin * max(max(highs), 0.2 * abs(min(lows))))
    return out


def prediction_curves(
    classifiers: Mapping[str, Classifier],
    autoencoder: Autoencoder,
    image: torch.Tensor,
    tasks: Sequence[str],
    lambda_ranges: Mapping[str, tuple[float, float]],
    n_points: int = 21,
) -> ShiftGrid:
    """Prediction of each task along its own latent shift, for each model (paper Fig. 3).

    The same autoencoder serves every model; each (model, task) shifts along its own gradient,
    over ``n_points`` lambdas spanning the task's range in ``lambda_ranges`` (see
    :func:`lambda_ranges`). Tasks a model does not predict, or without a range, are left out.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise InputShapeError(f"prediction_curves takes one image (1, 1, H, W), got {tuple(image.shape)}")
    rows, frames, grids = [], {}, {}
    for task in tasks:
        if task not in lambda_ranges:
            continue
        lo, hi = (float(v) for v in lambda_ranges[task])
        grids[task] = np.linspace(lo, hi, int(n_points))
        for model_name, clf in classifiers.items():
            if task not in clf.targets:
                continue
            e = LatentShift(clf, autoencoder, search=FixedRange(lo, hi), n_frames=int(n_points)).explain(image, task)
            frames[(model_name, task)] = e.frames[0, :, 0].cpu().numpy()
            for step, (lam, p) in enumerate(zip(e.lambdas[0].tolist(), e.predictions[0].tolist(), strict=True)):
                rows.append({"model": model_name, "task": task, "step": step, "lambda": lam, "prediction": p,
                             "initial": float(e.initial_prediction[0])})
    if not frames:
        raise InvalidParameterError(f"no classifier predicts any of {list(tasks)} with a lambda range")
    return ShiftGrid(grids, frames, pd.DataFrame(rows))


def lambda_grid(low: float, high: float, n: int, smallest: float | None = None) -> np.ndarray:
    """``n`` lambdas from ``low`` (< 0) to ``high`` (>= 0), geometrically spaced on each side so
    that bounds near 0 and far from it are both resolved; includes 0. ``smallest`` is the
    smallest nonzero ``|lambda|`` (default ``1e-3`` of the widest side)."""
    if not low < 0 <= high:
        raise InvalidParameterError(f"lambda_grid needs low < 0 <= high, got {low}, {high}")
    width = max(-low, high)
    smallest = smallest or 1e-3 * width
    n_neg = max(2, round((n - 1) * (1.0 if high == 0 else 0.75)))
    neg = -np.geomspace(smallest, -low, n_neg)[::-1]
    pos = np.geomspace(min(smallest, high), high, n - 1 - n_neg) if high > 0 and n - 1 - n_neg > 0 else np.zeros(0)
    return np.concatenate([neg, [0.0], pos])


def dense_curve(classifier: Classifier, autoencoder: Autoencoder, images: torch.Tensor, target: str,
                lambdas: Sequence[float]) -> np.ndarray:
    """Predictions ``(B, L)`` of ``D(z + lambda dz)`` on a lambda grid (no extra sigmoid)."""
    return LatentShift(classifier, autoencoder).prediction_curve(images, target, lambdas).numpy()
