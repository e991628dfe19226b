"""A model trained with BCE against one trained with weighted BCE: CheXplain-IBA Table 3.

:func:`weighted_bce_models` trains (or loads) the pair on the same imbalanced data;
:func:`weighted_bce_study` gives each model's AUC and the mean IoU of its Inverse IBA maps per
task (:func:`chexp.experiments.iou.iou_study`, summarised by :func:`~.iou.summarize_iou`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import UnsupportedProfileError
from ..methods import get_method_spec
from ..metrics.classification import auc_per_task, predict
from ..models.base import Classifier
from ..profiles import PhantomProfile, Profile, SampleSet
from .iba_setup import DEFAULT_STATISTICS_IMAGES, make_setup, training_images
from .iou import iou_study, summarize_iou

__all__ = ["weighted_bce_models", "weighted_bce_study"]


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
        models = {"BCE": imbalanced_classifier(cfg, weighted=False, progress=progress),
                  "Weighted BCE": imbalanced_classifier(cfg, weighted=True, progress=progress)}
        return models, phantom_training_images(cfg.phantom, cfg.seed)
    if profile.name == "cohen":
        from ..training import CohenTraining, brixia_detectors

        cfg = CohenTraining(size=int(getattr(profile, "size", 128)))
        models = {"BCE": brixia_detectors(cfg, weighted=False, progress=progress),
                  "Weighted BCE": brixia_detectors(cfg, weighted=True, progress=progress)}
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
    """Table 3: per model, AUC on ``evaluation`` and mean IoU of ``method`` on each task's positives.

    Returns ``(table, long)``: the table has one row per model and columns ``<task> AUC``,
    ``<task> IoU``, ``mean AUC``, ``mean IoU``; ``long`` has the per-sample IoU.
    """
    get_method_spec(method)
    rows, longs = [], []
    for name, model in models.items():
        setup = make_setup(profile, model, device, n_statistics=n_statistics, images=images, **setup_options)
        scores = predict(setup.classifier, evaluation.images.to(setup.device), progress=False).numpy()
        aucs = auc_per_task(scores, evaluation.labels, list(model.targets))
        long = iou_study(setup, samples, [method], progress=progress)
        long["model"] = name
        longs.append(long)
        means = summarize_iou(long, by=("task",), value="IoU").set_index("task")["mean"]
        row: dict[str, Any] = {"model": name}
        for task in samples:
            row[f"{task} AUC"] = aucs.get(task, float("nan"))
            row[f"{task} IoU"] = float(means.get(task, float("nan")))
        row["mean AUC"] = float(np.nanmean([aucs.get(t, np.nan) for t in samples]))
        row["mean IoU"] = float(np.nanmean(means.to_numpy()))
        rows.append(row)
    return pd.DataFrame(rows), pd.concat(longs, ignore_index=True)
