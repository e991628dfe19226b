"""Cascading randomization of the classifier for every method: Gifsplanation Fig. 5 and
Appendix H.

:func:`cascade_steps` groups the classifier's layers into randomization steps (output end
first), :func:`randomization_study` explains the same images after each step and
:func:`randomization_table` tabulates how similar each map stays to the intact model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..methods import build_method, get_method_specs
from ..metrics.randomization import RandomizationResult, cascading_randomization, parameterized_layers
from ..models.base import Autoencoder, Classifier
from .batches import ImageBatch, map_batches, split_images

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["cascade_steps", "randomization_study", "randomization_table"]


def cascade_steps(model: torch.nn.Module) -> list[list[str]]:
    """Randomization steps, output end first: parameterised leaf layers grouped by block.

    A layer under a module called ``features`` is grouped with the rest of its block (the child
    of ``features`` it belongs to, e.g. ``features.block3`` or ``net.features.denseblock4``);
    other layers (the classifier head) are steps of their own.
    """
    groups: dict[str, list[str]] = {}
    for name in parameterized_layers(model):
        parts = name.split(".")
        key = name
        if "features" in parts[:-1]:
            k = parts.index("features")
            key = ".".join(parts[: k + 2])
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def randomization_study(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    images: torch.Tensor,
    target: str,
    steps: Sequence[Sequence[str]] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    progress: bool = True,
    batch_size: int | None = None,
    client: Client | None = None,
) -> dict[str, RandomizationResult]:
    """Cascading randomization of the classifier for each method (the autoencoder is kept).

    Every batch of images goes through the same randomised weights (``seed``), so batches only
    split the work. ``batch_size``: images explained together (``None``: all of them).
    ``client``: each (method, batch) a Dask task on its workers (the models are sent to each
    worker once; :func:`~.batches.map_batches`); the results are the same as without.
    """
    get_method_specs(methods)
    plan = [list(s) for s in (steps if steps is not None else cascade_steps(classifier))]
    ids = [str(k) for k in range(len(images))]
    batches = [b for name in methods for b in split_images((name, target), images, ids, batch_size)]
    work = (classifier, autoencoder, dict(settings or {}), plan, seed, images.device)
    parts = map_batches(_randomize, batches, work, client, "randomization", progress)
    return {name: _concat_results([r for b, r in zip(batches, parts, strict=True) if b.key[0] == name])
            for name in methods}


def _randomize(
    work: tuple[Classifier, Autoencoder | None, dict[str, Mapping[str, Any]], list[list[str]], int, torch.device],
    batch: ImageBatch,
) -> RandomizationResult:
    """The cascade of one method (``batch.key``: method, target) on one batch of images."""
    classifier, autoencoder, settings, plan, seed, device = work
    name, target = batch.key
    images = batch.images.to(device)

    def explain(model: torch.nn.Module) -> torch.Tensor:
        method = build_method(name, model, autoencoder, **dict(settings.get(name, {})))
        return method.attribute(images, target).cpu()

    return cascading_randomization(classifier, explain, steps=plan, seed=seed, progress=False)


def _concat_results(parts: Sequence[RandomizationResult]) -> RandomizationResult:
    """The results of one method's batches as one (images one after the other; the study keeps
    no maps)."""
    if len(parts) == 1:
        return parts[0]
    return RandomizationResult(parts[0].steps, *(np.concatenate([getattr(p, m) for p in parts], axis=1)
                                                 for m in ("pearson", "spearman", "ssim")), None)


def randomization_table(results: Mapping[str, RandomizationResult]) -> pd.DataFrame:
    """Long table: ``method``, ``step`` (0 = original), ``layers``, ``metric``, ``mean``, ``std``."""
    rows = []
    for name, r in results.items():
        for metric in ("pearson", "spearman", "ssim"):
            values = getattr(r, metric)
            for k, label in enumerate(r.steps):
                rows.append({"method": name, "step": k, "layers": label, "metric": metric,
                             "mean": float(np.nanmean(values[k])), "std": float(np.nanstd(values[k]))})
    return pd.DataFrame(rows)
