"""Insertion and deletion curves of every method: CheXplain-IBA Fig. 2.

:func:`perturbation_study` inserts (deletes) each map's most important pixels first into (from)
a blurred image and follows the target's prediction; :class:`PerturbationStudy` holds the curves
and tabulates their AUC per method (Fig. 2) and per task. ``max_fraction=0.5, min_score=0.6``
evaluate as the released CheXplain-IBA code does (half of the pixels; images the classifier
scores below 0.6 left out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..errors import InvalidParameterError
from ..methods import get_method_specs
from ..metrics import perturbation_curves
from ..metrics.perturbation import PerturbationCurves
from ..profiles import SampleSet
from ..targets import as_target
from .batches import ImageBatch, map_batches, split_images
from .iba_setup import PAPER_METHODS, Setup

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["MODES", "PerturbationStudy", "perturbation_study"]

#: The two curves, in :class:`PerturbationStudy`'s order.
MODES: tuple[str, str] = ("insertion", "deletion")


@dataclass
class PerturbationStudy:
    """Insertion and deletion curves of every method, pooled over tasks.

    Attributes:
        insertion, deletion: method -> :class:`~chexp.metrics.perturbation.PerturbationCurves`
            (rows: every image of every task that was evaluated).
        tasks: the task of each row.
        left_out: task -> images not evaluated because the classifier scored them below
            ``min_score`` (every task, 0 when none).
    """

    insertion: dict[str, PerturbationCurves]
    deletion: dict[str, PerturbationCurves]
    tasks: list[str]
    left_out: dict[str, int]

    def table(self) -> pd.DataFrame:
        """Mean and std of the insertion and deletion AUC per method (paper Fig. 2)."""
        rows = []
        for name in self.insertion:
            ins, dele = self.insertion[name].auc, self.deletion[name].auc
            rows.append({"method": name, "insertion AUC": ins.mean(), "insertion std": _std(ins),
                         "deletion AUC": dele.mean(), "deletion std": _std(dele),
                         "insertion - deletion": ins.mean() - dele.mean(), "n": len(ins)})
        return pd.DataFrame(rows)

    def table_per_task(self) -> pd.DataFrame:
        """Mean insertion and deletion AUC per task and method."""
        tasks = np.asarray(self.tasks)
        rows = []
        for name in self.insertion:
            for task in dict.fromkeys(self.tasks):
                keep = tasks == task
                rows.append({"method": name, "task": task, "insertion AUC": self.insertion[name].auc[keep].mean(),
                             "deletion AUC": self.deletion[name].auc[keep].mean(), "n": int(keep.sum())})
        return pd.DataFrame(rows)


def _std(values: np.ndarray) -> float:
    """Sample standard deviation (ddof 1); NaN for fewer than two values."""
    return values.std(ddof=1) if len(values) > 1 else float("nan")


def _concat_curves(parts: Sequence[PerturbationCurves]) -> PerturbationCurves:
    return PerturbationCurves(parts[0].fractions, np.concatenate([p.scores for p in parts]),
                              np.concatenate([p.auc for p in parts]), parts[0].mode)


def _scores(setup: Setup, x: torch.Tensor, task: str) -> torch.Tensor:
    """The target's scores ``(N,)`` of the images (the score the curves follow)."""
    with torch.no_grad():
        return as_target(task)(setup.classifier(x), setup.classifier).cpu()


def perturbation_study(
    setup: Setup, samples: Mapping[str, SampleSet], methods: Sequence[str] = PAPER_METHODS,
    curve_points: int = 100, batch_size: int = 128, progress: bool = True,
    max_fraction: float = 1.0, min_score: float | None = None,
    image_batch: int | None = None, client: Client | None = None,
) -> PerturbationStudy:
    """Insertion and deletion (blurred baseline, sigma 10, kernel 19) for every task's images.

    ``curve_points`` sets the pixels changed per step (``ceil(max_fraction * H * W /
    curve_points)``; the paper changes 25 of 50,176 pixels per step, about 2,000 points, and the
    released code stops at half of them).

    Args:
        max_fraction: share of the most important pixels inserted or deleted (default 1, every
            pixel; released code 0.5); the AUC is the mean score over that range
            (:func:`~chexp.metrics.perturbation.perturbation_curves`).
        min_score: leave out images whose target score (a probability for the CheXplain-IBA
            classifiers) is below it (default ``None``: every image; released code 0.6). A task
            with no image left adds no rows.
        image_batch: images explained and perturbed together (default ``None``: all of a task's
            images; a batch's composition can move a curve a little, since ties between equal
            map values are ordered by a draw over the batch).
        client: run each batch as a Dask task on this client's workers (the setup is sent to
            each worker once; :func:`~.batches.map_batches`); the curves are the same as
            without (``None``: here, batch after batch).

    Raises:
        InvalidParameterError: ``min_score`` leaves out every image.
    """
    get_method_specs(methods)
    left_out: dict[str, int] = {}
    batches: list[ImageBatch] = []
    for task, s in samples.items():
        x = s.images.to(setup.device)
        keep = torch.ones(len(x), dtype=torch.bool) if min_score is None else _scores(setup, x, task) >= min_score
        left_out[task] = int((~keep).sum())
        ids = s.ids or [str(k) for k in range(len(s))]
        batches += split_images((task,), x[keep.to(x.device)], [ids[i] for i in np.flatnonzero(keep.numpy())],
                                image_batch)
    if not batches:
        raise InvalidParameterError(
            f"min_score {min_score} leaves out every image (left out per task: {left_out}); lower it or pass None"
        )
    work = (setup, tuple(methods), curve_points, batch_size, max_fraction)
    parts = map_batches(_batch_curves, batches, work, client, "insertion/deletion", progress)
    return PerturbationStudy(
        *({name: _concat_curves([p[name][mode] for p in parts]) for name in methods} for mode in MODES),
        [b.key[0] for b in batches for _ in range(len(b))],
        left_out,
    )


def _batch_curves(
    work: tuple[Setup, tuple[str, ...], int, int, float], batch: ImageBatch
) -> dict[str, dict[str, PerturbationCurves]]:
    """method -> mode -> the curves of one batch of a task's images (:func:`perturbation_study`)."""
    setup, methods, curve_points, batch_size, max_fraction = work
    (task,) = batch.key
    x = batch.images.to(setup.device)
    maps = setup.explain(x, task, methods)
    step = max(1, math.ceil(int(max_fraction * x[0].numel()) / curve_points))
    return {name: {mode: perturbation_curves(setup.classifier, x, maps[name].to(setup.device), task, mode=mode,
                                             pixels_per_step=step, batch_size=batch_size, progress=False,
                                             max_fraction=max_fraction)
                   for mode in MODES}
            for name in methods}
