"""Figures of the CheXplain-IBA chapters (Fig. 2, 3b, Tables 1-3 as bar charts, severity correlations).

The chapters' map grids (Fig. 1, 3a, 4) are :func:`chexp.plotting.maps.map_grid` with
:data:`~chexp.plotting.maps.CHEXPLAIN`.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure`; notebooks save it with
:func:`chexp.outputs.save_figure` and show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..metrics.perturbation import PerturbationCurves
from .metrics import plot_perturbation_curves

__all__ = [
    "plot_insertion_deletion",
    "plot_iou",
    "plot_sensitivity_n",
    "plot_severity_correlation",
    "plot_weighted_bce",
]


def plot_insertion_deletion(
    insertion: Mapping[str, PerturbationCurves], deletion: Mapping[str, PerturbationCurves]
) -> Figure:
    """Paper Fig. 2: mean insertion and deletion curves, and mean AUCs (insertion against
    deletion; top left is best)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    plot_perturbation_curves(insertion, axes[0])
    plot_perturbation_curves(deletion, axes[1])
    ax = axes[2]
    for name in insertion:
        ax.scatter(deletion[name].auc.mean(), insertion[name].auc.mean(), s=40, label=name)
        ax.annotate(name, (deletion[name].auc.mean(), insertion[name].auc.mean()), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel("deletion AUC (lower is better)")
    ax.set_ylabel("insertion AUC (higher is better)")
    ax.set_title("AUC (top left is best)")
    fig.tight_layout()
    return fig


def plot_iou(table: pd.DataFrame, title: str = "mean IoU with the ground-truth mask") -> Figure:
    """Grouped bars of a task x method IoU table (rows: tasks and ``mean``, columns: methods), as
    :func:`chexp.experiments.iou.mean_iou_table` gives it."""
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(table.index)), 3.4))
    width = 0.8 / max(len(table.columns), 1)
    x = np.arange(len(table.index))
    for j, method in enumerate(table.columns):
        ax.bar(x + j * width, table[method].to_numpy(float), width, label=method)
    ax.set_xticks(x + 0.4 - width / 2, [str(t) for t in table.index], fontsize=8)
    ax.set_ylabel("IoU")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=min(4, len(table.columns)))
    fig.tight_layout()
    return fig


def plot_weighted_bce(table: pd.DataFrame, tasks: Sequence[str]) -> Figure:
    """Table 3 side by side: AUC (left) and Inverse IBA IoU (right) per task for each model."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    x = np.arange(len(tasks) + 1)
    labels = [*tasks, "mean"]
    width = 0.8 / len(table)
    for ax, metric in zip(axes, ("AUC", "IoU"), strict=True):
        for j, (_, row) in enumerate(table.iterrows()):
            values = [row[f"{t} {metric}"] for t in tasks] + [row[f"mean {metric}"]]
            ax.bar(x + j * width, values, width, label=row["model"])
        ax.set_xticks(x + 0.4 - width / 2, labels, rotation=20, fontsize=7)
        ax.set_title(f"{'held-out ROC AUC' if metric == 'AUC' else 'Inverse IBA IoU'}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_sensitivity_n(table: pd.DataFrame) -> Figure:
    """Paper Fig. 3b: sensitivity-N correlation against the mask size, one line per map kind."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, part in table.groupby("map", sort=False):
        ax.plot(part["n"], part["correlation"], marker="o", ms=3, label=name)
    ax.set_xscale("log")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("pixels set to the baseline (n)")
    ax.set_ylabel("Pearson r (score drop, map sum)")
    ax.set_title("sensitivity-N", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_severity_correlation(per_image: pd.DataFrame, maps: Sequence[str]) -> Figure:
    """Per-image severity correlation of each map kind (box plot, random maps included)."""
    fig, ax = plt.subplots(figsize=(1.4 * len(maps) + 2, 3.4))
    data = [per_image[m].dropna().to_numpy() for m in maps]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(np.arange(1, len(maps) + 1), list(maps), rotation=15, fontsize=7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("Pearson r with the severity map")
    fig.tight_layout()
    return fig
