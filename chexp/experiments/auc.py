"""Gifsplanation Table 1: the classifier's ROC AUC per task beside the IoU of each method.

:func:`auc_table` gives the AUC; :func:`table1` lays it out beside the IoU summary of
:func:`chexp.experiments.iou.summarize_iou` (of :func:`~chexp.experiments.iou.compute_iou`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..metrics import classifier_auc
from ..models.base import Classifier

__all__ = ["auc_table", "table1"]


def auc_table(classifier: Classifier, images: torch.Tensor, labels: np.ndarray, targets: Sequence[str],
              tasks: Sequence[str], batch_size: int = 64) -> pd.DataFrame:
    """ROC AUC of the classifier per task on labelled images (``labels`` columns ``targets``).

    Returns columns ``task``, ``auc``, ``n_positive``, ``n_negative``.
    """
    cols = [list(targets).index(t) for t in tasks]
    model_cols = [classifier.target_index(t) for t in tasks]
    all_auc = classifier_auc(classifier, images, _align_labels(labels, targets, classifier.targets),
                             batch_size=batch_size, progress=False)
    rows = []
    for task, col, _ in zip(tasks, cols, model_cols, strict=True):
        y = labels[:, col]
        rows.append({"task": task, "auc": all_auc[task], "n_positive": int(np.nansum(y == 1)),
                     "n_negative": int(np.nansum(y == 0))})
    return pd.DataFrame(rows)


def _align_labels(labels: np.ndarray, targets: Sequence[str], model_targets: Sequence[str]) -> np.ndarray:
    """Labels ``(N, len(targets))`` -> ``(N, len(model_targets))``, NaN for outputs without labels."""
    out = np.full((labels.shape[0], len(model_targets)), np.nan)
    for j, name in enumerate(model_targets):
        if name in targets:
            out[:, j] = labels[:, list(targets).index(name)]
    return out


def table1(summary: pd.DataFrame, auc: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's Table 1 layout: one row per (task, method), the task's AUC beside the IoU."""
    t = summary.merge(auc[["task", "auc"]], on="task", how="left")
    if methods is not None:
        t["method"] = pd.Categorical(t["method"], categories=list(methods), ordered=True)
        t = t.sort_values(["task", "method"], kind="stable")
        t["method"] = t["method"].astype(str)
    return t[["task", "auc", "method", "iou", "mean", "std", "ci_low", "ci_high", "n"]].reset_index(drop=True)
