"""A model trained with BCE against one trained with weighted BCE: CheXplain-IBA Table 3.

:func:`weighted_bce_models` trains (or loads) the pair on the same imbalanced data;
:func:`weighted_bce_study` gives each model's ROC AUC and average precision (the paper's section 4
reports both: AUC 0.790 / 0.788, AP 0.243 / 0.236 for BCE / weighted BCE;
:func:`detection_columns`) and the mean IoU of its Inverse IBA maps per task
(:func:`chexp.experiments.iou.iou_study`, summarised by :func:`~.iou.summarize_iou`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import UnsupportedProfileError
from ..methods import get_method_spec
from ..metrics.classification import auc_per_task, average_precision, predict
from ..models.base import Classifier
from ..profiles import PhantomProfile, Profile, SampleSet
from .iba_setup import DEFAULT_STATISTICS_IMAGES, make_setup, training_images
from .iou import iou_study, summarize_iou

__all__ = ["TRAINED_BY_PAPER", "average_precision", "detection_columns", "weighted_bce_models", "weighted_bce_study"]

#: Why the ``paper`` profile runs Table 3 on its stand-in (:func:`~.iba_setup.brixia_stand_in`).
TRAINED_BY_PAPER = (
    "CheXplain-IBA's Table 3 compares two DenseNet121 NIH ChestX-ray8 classifiers it trained itself, with BCE "
    "and with weighted BCE; neither is published, and torchxrayvision's XRV-all is a single model trained on "
    "several data sets."
)


def detection_columns(
    scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, targets: Sequence[str],
    tasks: Sequence[str],
) -> dict[str, float]:
    """Table 3's detection columns of one model: ``<task> AUC`` and ``<task> AP`` for each of
    ``tasks``, then ``mean AUC`` and ``mean AP`` over them (NaN tasks left out of the means).

    Args:
        scores: ``(N, T)`` model outputs, columns ``targets``.
        labels: ``(N, T)`` labels in [0, 1] (NaN: unknown), columns ``targets``.
        targets: the ``T`` column names.
        tasks: the names reported (a task not among ``targets`` gets NaN).
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    aucs = auc_per_task(s, y, list(targets))
    aps = {name: average_precision(s[:, j], y[:, j]) for j, name in enumerate(targets) if name}
    row: dict[str, float] = {}
    for task in tasks:
        row[f"{task} AUC"] = aucs.get(task, float("nan"))
        row[f"{task} AP"] = aps.get(task, float("nan"))
    for metric, values in (("AUC", aucs), ("AP", aps)):
        row[f"mean {metric}"] = float(np.nanmean([values.get(t, np.nan) for t in tasks]))
    return row


def weighted_bce_models(
    profile: Profile, prevalence: float = 0.1, progress: bool = False
) -> tuple[dict[str, Classifier], Callable[[int], torch.Tensor]]:
    """The two classifiers of Table 3, ``{"BCE": ..., "Weighted BCE": ...}``, and a function
    returning their training images (for the IBA statistics).

    Phantom profile: :func:`chexp.training.imbalanced_classifier` (every finding
    with prevalence ``prevalence``); cohen profile: the BrixIA detectors of :mod:`chexp.training.cohen`.
    """
    if isinstance(profile, PhantomProfile):
        from ..training import (
            ImbalancedTraining,
            imbalanced_classifier,
            phantom_training_images,
        )

        cfg = ImbalancedTraining(phantom=dataclasses.replace(profile.phantom, prevalence=prevalence))
        models = {name: imbalanced_classifier(cfg, weighted=weighted, progress=progress, device=profile.train_device)
                  for name, weighted in (("BCE", False), ("Weighted BCE", True))}
        return models, phantom_training_images(cfg.phantom, cfg.seed)
    if profile.name == "cohen":
        from ..training import CohenTraining, brixia_detectors

        cfg = CohenTraining(size=int(getattr(profile, "size", 128)))
        models = {name: brixia_detectors(cfg, weighted=weighted, progress=progress, device=profile.train_device)
                  for name, weighted in (("BCE", False), ("Weighted BCE", True))}
        return models, training_images(profile)
    raise UnsupportedProfileError(
        f"Table 3 needs a BCE and a weighted-BCE model trained on the same data; profile {profile.name!r} "
        "has none (torchxrayvision publishes no such pair)"
    )


def weighted_bce_study(
    profile: Profile,
    models: Mapping[str, Classifier],
    samples: Mapping[str, SampleSet],
    evaluation: SampleSet,
    device: str | torch.device = "cpu",
    method: str = "Inverse IBA",
    n_statistics: int = DEFAULT_STATISTICS_IMAGES,
    images: Callable[[int], torch.Tensor] | None = None,
    progress: bool = True,
    **setup_options: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3: per model, ROC AUC and average precision on ``evaluation`` and mean IoU of
    ``method`` on each task's positives.

    Returns ``(table, long)``: the table has one row per model and columns ``<task> AUC``,
    ``<task> AP``, ``<task> IoU``, ``mean AUC``, ``mean AP``, ``mean IoU``
    (:func:`detection_columns`); ``long`` has the per-sample IoU.
    """
    get_method_spec(method)
    rows, longs = [], []
    for name, model in models.items():
        setup = make_setup(profile, model, device, n_statistics=n_statistics, images=images, **setup_options)
        scores = predict(setup.classifier, evaluation.images.to(setup.device), progress=False).numpy()
        detection = detection_columns(scores, evaluation.labels, model.targets, list(samples))
        long = iou_study(setup, samples, [method], progress=progress)
        long["model"] = name
        longs.append(long)
        means = summarize_iou(long, by=("task",), value="IoU").set_index("task")["mean"]
        row: dict[str, Any] = {"model": name}
        for task in samples:
            row |= {key: detection[key] for key in (f"{task} AUC", f"{task} AP")}
            row[f"{task} IoU"] = float(means.get(task, float("nan")))
        row |= {"mean AUC": detection["mean AUC"], "mean AP": detection["mean AP"],
                "mean IoU": float(np.nanmean(means.to_numpy()))}
        rows.append(row)
    return pd.DataFrame(rows), pd.concat(longs, ignore_index=True)
