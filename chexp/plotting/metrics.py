"""Figures of the evaluation metrics: perturbation curves, cascading randomization, reader study."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..metrics.perturbation import PerturbationCurves
from ..metrics.randomization import RandomizationResult


def plot_perturbation_curves(curves: Mapping[str, PerturbationCurves], ax: Axes | None = None) -> Axes:
    """Mean insertion or deletion curve per method (legend shows the mean AUC)."""
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    mode = ""
    for name, c in curves.items():
        ax.plot(c.fractions, c.scores.mean(0), label=f"{name} (AUC {c.auc.mean():.3f})")
        mode = c.mode
    ax.set_xlabel(f"fraction of pixels {'deleted' if mode == 'deletion' else 'inserted'}")
    ax.set_ylabel("target score")
    ax.set_title(mode)
    ax.legend(fontsize=7)
    return ax


def plot_randomization(
    results: Mapping[str, RandomizationResult], metric: str = "spearman", ax: Axes | None = None
) -> Axes:
    """Similarity to the original map against the randomisation step (Gifsplanation Fig. 5)."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    for name, r in results.items():
        values = getattr(r, metric)
        ax.plot(np.arange(len(r.steps)), values.mean(1), marker="o", ms=3, label=name)
    first = next(iter(results.values()))
    if len(first.steps) <= 20:
        ax.set_xticks(np.arange(len(first.steps)), first.steps, rotation=90, fontsize=6)
    ax.set_xlabel("layers randomised (output end first, cumulative)")
    ax.set_ylabel(f"{metric} with original map")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7)
    return ax


def plot_reader_study(ratings: pd.DataFrame, question: str = "confidence", ax: Axes | None = None) -> Axes:
    """Mean rating per pathology, method and true/false positive (paper Fig. 6A)."""
    ax = ax or plt.subplots(figsize=(7, 3))[1]
    table = ratings.groupby(["target", "label", "method"])[question].mean().unstack(["label", "method"])
    targets = list(table.index)
    columns = [(lab, m) for lab in (1, 0) for m in ("traditional", "latentshift") if (lab, m) in table.columns]
    width = 0.8 / len(columns)
    for i, col in enumerate(columns):
        lab, method = col
        ax.bar(np.arange(len(targets)) + i * width, table[col], width,
               label=f"{'TP' if lab == 1 else 'FP'} {method}", hatch="" if lab == 1 else "//")
    ax.set_xticks(np.arange(len(targets)) + 0.4 - width / 2, targets, rotation=20, fontsize=7)
    ax.set_ylim(1, 5)
    ax.set_ylabel(f"mean {question} (1-5)")
    ax.legend(fontsize=6, ncol=2)
    return ax
