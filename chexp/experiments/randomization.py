"""Cascading randomization of the classifier for every method: Gifsplanation Fig. 5 and
Appendix H.

:func:`cascade_steps` groups the classifier's layers into randomization steps (output end
first), :func:`randomization_study` explains the same images after each step and
:func:`randomization_table` tabulates how similar each map stays to the intact model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..methods import build_method, get_method_specs
from ..metrics.randomization import RandomizationResult, cascading_randomization, parameterized_layers
from ..models.base import Autoencoder, Classifier
from ..progress import tqdm

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
) -> dict[str, RandomizationResult]:
    """Cascading randomization of the classifier for each method (the autoencoder is kept)."""
    get_method_specs(methods)
    settings = settings or {}
    plan = [list(s) for s in (steps if steps is not None else cascade_steps(classifier))]
    out = {}
    for name in tqdm(methods, desc="randomization", disable=not progress):
        def explain(model: torch.nn.Module, name: str = name) -> torch.Tensor:
            method = build_method(name, model, autoencoder, **dict(settings.get(name, {})))
            return method.attribute(images, target).cpu()

        out[name] = cascading_randomization(classifier, explain, steps=plan, seed=seed, progress=False)
    return out


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
