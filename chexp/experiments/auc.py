"""Gifsplanation Table 1: the classifier's ROC AUC per task beside the IoU of each method.

:func:`auc_table` gives the AUC; :func:`table1` lays it out beside the IoU summary of
:func:`chexp.experiments.iou.summarize_iou` (of :func:`~chexp.experiments.iou.compute_iou`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..metrics import classifier_auc
from ..models.base import Classifier
from .classifiers import per_classifier, predicted_tasks

__all__ = ["auc_by_classifier", "auc_table", "table1", "table1_wide"]


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


def auc_by_classifier(classifiers: Mapping[str, Classifier], images: torch.Tensor, labels: np.ndarray,
                      targets: Sequence[str], tasks: Sequence[str], batch_size: int = 64) -> pd.DataFrame:
    """:func:`auc_table` of each classifier on the same images, for the ``tasks`` it predicts.

    Returns columns ``classifier`` (its name in ``classifiers``), ``task``, ``auc``,
    ``n_positive``, ``n_negative``; one block of rows per classifier, in order.
    """
    return per_classifier(classifiers, lambda c: auc_table(c, images, labels, targets, predicted_tasks(c, tasks),
                                                           batch_size))


def _align_labels(labels: np.ndarray, targets: Sequence[str], model_targets: Sequence[str]) -> np.ndarray:
    """Labels ``(N, len(targets))`` -> ``(N, len(model_targets))``, NaN for outputs without labels."""
    out = np.full((labels.shape[0], len(model_targets)), np.nan)
    for j, name in enumerate(model_targets):
        if name in targets:
            out[:, j] = labels[:, list(targets).index(name)]
    return out


def table1(summary: pd.DataFrame, auc: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's Table 1 layout: one row per (task, method), the task's AUC beside the IoU.

    With a ``classifier`` column in both tables (:func:`auc_by_classifier`,
    ``summarize_iou(..., by=("classifier", "task", "method"))``) the rows are per (classifier,
    task, method), classifiers in their order of appearance, and that column comes first.
    ``methods``: sort each task's rows in this order (tasks are sorted by name).
    """
    keys = ["classifier", "task"] if "classifier" in summary.columns else ["task"]
    t = summary.merge(auc[[*keys, "auc"]], on=keys, how="left")
    if methods is not None:
        ranks = {"method": list(methods), "classifier": list(dict.fromkeys(t[keys[0]]))}
        t = t.sort_values([*keys, "method"], kind="stable",
                          key=lambda col: col.map({v: i for i, v in enumerate(ranks[col.name])})
                          if col.name in ranks else col)
    return t[[*keys, "auc", "method", "iou", "mean", "std", "ci_low", "ci_high", "n"]].reset_index(drop=True)


def table1_wide(table: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Table 1 as the paper prints it: the IoU text (``0.33±0.07``) per method (rows, in
    ``methods``' order, then an ``AUC`` row) and task (columns), one block per classifier.

    ``table``: :func:`table1`'s table with a ``classifier`` column. Returns a frame indexed by
    (``classifier``, ``method``); a task a classifier does not predict is empty in its block.
    """
    blocks = {}
    for name, rows in table.groupby("classifier", sort=False):
        wide = rows.pivot_table(index="method", columns="task", values="iou", aggfunc="first").reindex(methods)
        wide.loc["AUC"] = rows.groupby("task")["auc"].first().round(2).astype(str)
        blocks[name] = wide
    return pd.concat(blocks, names=["classifier", "method"])
