"""IoU of attribution maps with ground-truth masks, one pipeline for both papers.

Serves Gifsplanation Table 1 (and App. B, E.1) and CheXplain-IBA Tables 1-3 (and Fig. 4).
A map is binarised to its top-``p`` pixels, ``p`` = the mask's area (:func:`chexp.metrics.iou`).

The pipeline:

* :func:`iou_per_sample`: the long table, one row per (task, method, sample), of any map
  function (``(images, task) -> {method: maps}``) on each task's positive images.
* :func:`summarize_iou`: per task and method (or any grouping), ``n``, ``mean``, ``std``
  (ddof 1), the 95 % bootstrap CI of the mean and the ``0.33±0.07`` text; this is also the
  Gifsplanation summary (Table 1 with :func:`chexp.experiments.auc.table1`, App. B).

Each paper's entry points and tables are thin layers over these two:

=================================  ==============================================================
:func:`compute_iou`                Gifsplanation: the long table of :func:`~.maps.compute_maps`
:func:`compute_iou_by_classifier`  Gifsplanation: the same for each classifier compared (Table 1
                                   and E.1 put three side by side), with a ``classifier`` column
:func:`iou_study`                  CheXplain-IBA: the long table of a :class:`~.iba_setup.Setup`
                                   (columns ``task``, ``sample``, ``method``, ``IoU``)
:func:`mean_iou_table`             CheXplain-IBA Tables 1-2: mean per task x method + ``mean`` row
:func:`method_iou_summary`         CheXplain-IBA: per method, pooled over tasks
:func:`map_iou_table`              CheXplain-IBA Fig. 4: IoU per image of given maps
=================================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..errors import InvalidParameterError, UnknownNameError
from ..methods import get_method_specs
from ..metrics import iou, summarize
from ..models.base import Autoencoder, Classifier
from ..profiles import SampleSet
from .batches import ImageBatch, map_batches, split_images
from .classifiers import per_classifier, predicted_tasks
from .iba_setup import PAPER_METHODS as CHEXPLAIN_METHODS
from .iba_setup import Setup
from .maps import compute_maps

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "MapFunction",
    "compute_iou",
    "compute_iou_by_classifier",
    "iou_per_sample",
    "iou_study",
    "map_iou",
    "map_iou_table",
    "mean_iou_table",
    "method_iou_summary",
    "summarize_iou",
]

#: ``(images (B, 1, H, W) on the device, task) -> {method: maps (B, H, W) or (B, 1, H, W)}``,
#: higher = more important.
MapFunction = Callable[[torch.Tensor, str], Mapping[str, torch.Tensor | np.ndarray]]


def map_iou(maps: Mapping[str, torch.Tensor | np.ndarray], masks: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """IoU of each kind of map with ``masks`` (same batch): name -> float64 ``(B,)``."""
    return {name: iou(m, masks).numpy() for name, m in maps.items()}


def iou_per_sample(
    maps: MapFunction,
    classifier: Classifier,
    samples_by_task: Mapping[str, SampleSet],
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    progress: bool = True,
    client: Client | None = None,
) -> pd.DataFrame:
    """IoU of every map with the ground-truth mask, one row per (task, method, sample).

    Args:
        maps: the map function, called once per batch of each task's images.
        classifier: gives the ``prediction`` column (the task's output for each image).
        samples_by_task: task -> :class:`~chexp.profiles.SampleSet` of images positive for it
            (``masks[task]`` is the ground truth).
        batch_size: images per call of ``maps`` (``None``: all of a task's images at once).
        client: run each batch as a Dask task on this client's workers (``maps`` and
            ``classifier`` are sent to each worker once; :func:`~.batches.map_batches`); the
            table is the same as without (``None``: here, batch after batch).

    Returns:
        columns ``task``, ``method``, ``sample`` (the sample's id), ``iou``, ``mask_pixels``,
        ``prediction``; rows by task, batch, method, then sample.
    """
    if batch_size is not None and batch_size < 1:
        raise InvalidParameterError(f"batch_size must be at least 1 (or None), got {batch_size}")
    for task, samples in samples_by_task.items():
        if task not in samples.masks:
            raise UnknownNameError(task, samples.masks, "task with ground-truth masks")
    batches = [b for task, samples in samples_by_task.items()
               for b in split_images((task,), samples.images, samples.ids or [str(k) for k in range(len(samples))],
                                     batch_size, np.asarray(samples.masks[task]))]
    parts = map_batches(_iou_rows, batches, (maps, classifier, device), client, "IoU", progress)
    return pd.DataFrame([row for part in parts for row in part],
                        columns=["task", "method", "sample", "iou", "mask_pixels", "prediction"])


def _iou_rows(work: tuple[MapFunction, Classifier, str | torch.device], batch: ImageBatch) -> list[dict[str, Any]]:
    """:func:`iou_per_sample`'s rows of one batch of a task's images (by method, then sample)."""
    maps, classifier, device = work
    (task,) = batch.key
    x = batch.images.to(device)
    with torch.no_grad():
        pred = classifier(x)[:, classifier.target_index(task)].cpu().numpy()
    mask = np.asarray(batch.masks)
    return [{"task": task, "method": name, "sample": batch.ids[j], "iou": float(value),
             "mask_pixels": int(mask[j].sum()), "prediction": float(pred[j])}
            for name, scores in map_iou(maps(x, task), mask).items() for j, value in enumerate(scores)]


def summarize_iou(
    per_sample: pd.DataFrame,
    by: Sequence[str] = ("task", "method"),
    value: str = "iou",
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean ± std (ddof 1) and a 95 % bootstrap CI of the mean (:func:`chexp.metrics.summarize`,
    NaNs dropped) per group of ``by``, in order of first appearance.

    Returns columns ``by``..., ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high``, ``iou`` (the
    papers' ``0.33±0.07`` text); a group without finite values has ``n`` 0 and NaN statistics.
    """
    rows = []
    for keys, group in per_sample.groupby(list(by), sort=False):
        values = group[value].to_numpy(dtype=np.float64)
        row: dict[str, Any] = dict(zip(by, keys, strict=True))
        if np.isnan(values).all():
            row.update(n=0, mean=np.nan, std=np.nan, ci_low=np.nan, ci_high=np.nan, iou="nan")
        else:
            s = summarize(values, n_bootstrap=n_bootstrap, seed=seed)
            row.update(n=s.n, mean=s.mean, std=s.std, ci_low=s.ci_low, ci_high=s.ci_high,
                       iou=f"{s.mean:.2f}±{s.std:.2f}")
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "std", "ci_low", "ci_high", "iou"])


# --------------------------------------------------------------------------------------------
# Gifsplanation (Table 1, E.1)
# --------------------------------------------------------------------------------------------
def compute_iou(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    samples_by_task: Mapping[str, SampleSet],
    device: str | torch.device = "cpu",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 16,
    progress: bool = True,
    client: Client | None = None,
) -> pd.DataFrame:
    """:func:`iou_per_sample` of :func:`~chexp.experiments.maps.compute_maps` (``|map|``) for
    ``methods`` (slugs of :data:`chexp.methods.METHODS`; ``settings`` per method), each batch
    a Dask task on ``client``'s workers when given (the same table)."""
    get_method_specs(methods)
    maps = partial(compute_maps, methods, classifier, autoencoder, settings=settings)
    return iou_per_sample(maps, classifier, samples_by_task, device, batch_size, progress, client)


def compute_iou_by_classifier(
    methods: Sequence[str],
    classifiers: Mapping[str, Classifier],
    autoencoder: Autoencoder | None,
    samples_by_task: Mapping[str, SampleSet],
    device: str | torch.device = "cpu",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 16,
    progress: bool = True,
    client: Client | None = None,
) -> pd.DataFrame:
    """:func:`compute_iou` of each classifier (name -> model, on ``device``) on the same images,
    for the tasks of ``samples_by_task`` it predicts (the others are left out: the paper's "Model
    does not predict").

    Returns :func:`compute_iou`'s columns after a first column ``classifier`` (the name in
    ``classifiers``); one block of rows per classifier, in order. Summarise it per classifier
    with ``summarize_iou(table, by=("classifier", "task", "method"))``.
    """
    return per_classifier(classifiers, lambda c: compute_iou(
        methods, c, autoencoder, {t: samples_by_task[t] for t in predicted_tasks(c, list(samples_by_task))},
        device, settings, batch_size, progress, client))


# --------------------------------------------------------------------------------------------
# CheXplain-IBA (Tables 1-3, Fig. 4)
# --------------------------------------------------------------------------------------------
def iou_study(
    setup: Setup, samples: Mapping[str, SampleSet], methods: Sequence[str] = CHEXPLAIN_METHODS, progress: bool = True,
    batch_size: int | None = None, client: Client | None = None,
) -> pd.DataFrame:
    """IoU of every method's map (as :meth:`~.iba_setup.Setup.explain` returns it: signed maps
    rank negative evidence last) with the task's mask.

    ``batch_size``: images explained together (``None``: all of a task's images in one batch;
    the batch can move an IoU a little: ties at the top-``p`` cut are ordered by a draw over the
    batch). ``client``: each
    batch a Dask task on its workers (the setup sent to each worker once; the same table).

    Returns the long table in the CheXplain layout: ``task``, ``sample``, ``method``, ``IoU``.
    """
    get_method_specs(methods)
    maps = partial(setup.explain, methods=tuple(methods))
    long = iou_per_sample(maps, setup.classifier, samples, setup.device, batch_size, progress, client)
    return long[["task", "sample", "method", "iou"]].rename(columns={"iou": "IoU"})


def mean_iou_table(long: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean IoU per task (rows) and method (columns; in ``methods``' order when given), plus a
    ``mean`` row over tasks (the paper's Table 1 reports this row; Table 2 the per-detector rows).

    ``long``: :func:`iou_study`'s table.
    """
    summary = summarize_iou(long, value="IoU")
    table = summary.pivot_table(index="task", columns="method", values="mean", aggfunc="first", sort=False)
    if methods is not None:
        table = table[[m for m in methods if m in table.columns]]
    table.loc["mean"] = table.mean(axis=0)
    return table


def method_iou_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Per method over all tasks of :func:`iou_study`'s table: ``method``, ``mean IoU``, ``std``,
    ``CI low``, ``CI high`` (95 % bootstrap) and ``n``."""
    summary = summarize_iou(long, by=("method",), value="IoU")
    names = {"mean": "mean IoU", "ci_low": "CI low", "ci_high": "CI high"}
    return summary.rename(columns=names)[["method", "mean IoU", "std", "CI low", "CI high", "n"]]


def map_iou_table(maps: Mapping[str, torch.Tensor], masks: Sequence[np.ndarray], index: Sequence[str]) -> pd.DataFrame:
    """IoU of each kind of map (columns) for each image (rows, named ``index``), plus a ``mean`` row."""
    truth = torch.from_numpy(np.stack([np.asarray(m, bool) for m in masks]))
    table = pd.DataFrame(map_iou(maps, truth), index=list(index))
    table.loc["mean"] = table.mean()
    return table
