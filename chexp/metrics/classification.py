"""Classifier ROC AUC (scikit-learn's ``roc_auc_score``, ties counted half) and average precision per task."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputShapeError
from ..models.base import Classifier
from ..progress import tqdm


def roc_auc(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """ROC AUC of one task: P(score of a positive > score of a negative) + 0.5 P(tie).

    Labels above 0.5 are positive; NaN labels (unknown) are dropped. Returns NaN when only one
    class remains or when a score is NaN; other scores must be finite.

    Raises:
        InputShapeError: ``scores`` and ``labels`` differ in shape.
    """
    s, y = _known(scores, labels)
    if y.all() or not y.any() or np.isnan(s).any():
        return float("nan")
    from sklearn.metrics import roc_auc_score  # scikit-learn takes a second to import: only here

    return float(roc_auc_score(y, s))


def _known(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Flat float64 scores and bool labels (above 0.5) of the known (non-NaN) labels."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.shape != y.shape:
        raise InputShapeError(f"scores {s.shape} and labels {y.shape} differ in shape")
    keep = ~np.isnan(y)
    return s[keep], y[keep] > 0.5


def average_precision(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """Average precision of one task (scikit-learn's ``average_precision_score``: the mean of the
    precisions at each positive's rank, weighted by the recall it adds).

    Labels above 0.5 are positive; NaN labels (unknown) are dropped. Returns NaN when no positive
    remains (AP is undefined) or when a score is NaN.

    Raises:
        InputShapeError: ``scores`` and ``labels`` differ in shape.
    """
    s, y = _known(scores, labels)
    if not y.any() or np.isnan(s).any():
        return float("nan")
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def auc_per_task(
    scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, targets: list[str] | tuple[str, ...]
) -> dict[str, float]:
    """AUC of every named column: ``scores`` and ``labels`` are ``(N, T)``; NaN labels are skipped;
    columns with an empty name are left out."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape or s.ndim != 2 or s.shape[1] != len(targets):
        raise InputShapeError(
            f"scores {s.shape} and labels {y.shape} must both be (N, {len(targets)}), one column per target"
        )
    return {name: roc_auc(s[:, j], y[:, j]) for j, name in enumerate(targets) if name}


def predict(
    model: Classifier, images: torch.Tensor, batch_size: int = 32, progress: bool = True
) -> torch.Tensor:
    """Scores ``(N, T)`` of ``model`` on images ``(N, 1, H, W)``, in batches, without gradients."""
    model.check_input(images[:1])
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, len(images), batch_size), disable=not progress, desc="predict"):
            batch = images[start : start + batch_size]
            model.check_input(batch)
            out.append(model(batch).cpu())
    return torch.cat(out)


def classifier_auc(
    model: Classifier,
    images: torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    batch_size: int = 32,
    progress: bool = True,
) -> dict[str, float]:
    """AUC per target of ``model`` on ``images`` ``(N, 1, H, W)`` with ``labels`` ``(N, T)``."""
    return auc_per_task(predict(model, images, batch_size, progress).numpy(), labels, model.targets)
