"""Figures of the CheXplain-IBA chapters (Fig. 1-4, Tables 1-3 as bar charts, severity maps).

Every function returns a matplotlib :class:`~matplotlib.figure.Figure`; notebooks save it with
:func:`chexp.outputs.save_figure` and show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..metrics.perturbation import PerturbationCurves
from .metrics import plot_perturbation_curves

__all__ = [
    "map_grid",
    "plot_insertion_deletion",
    "plot_iou",
    "plot_sensitivity_n",
    "plot_severity_correlation",
    "plot_weighted_bce",
]


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def map_grid(
    images: torch.Tensor | np.ndarray,
    columns: Mapping[str, torch.Tensor | np.ndarray],
    masks: Sequence[np.ndarray | None] | np.ndarray | None = None,
    row_titles: Sequence[str] | None = None,
    overlay: Mapping[str, bool] | None = None,
    cmap: str = "inferno",
    panel: float = 2.3,
    title: str | None = None,
) -> Figure:
    """One row per image: the image, then one panel per column of maps.

    Args:
        images: ``(N, 1, H, W)`` in [-1024, 1024].
        columns: panel title -> maps ``(N, 1, H, W)`` (or ``(N, H, W)``). Each map is scaled to its
            own maximum (signed maps: symmetric around 0 with a diverging colour map).
        masks: optional ground-truth mask per row ``(H, W)``, drawn as a cyan contour.
        row_titles: text above each row's image.
        overlay: column -> draw over the image (default True); False shows the map alone
            (e.g. a painted severity map).
        title: figure title.
    """
    imgs = _np(images).reshape(len(images), *np.shape(images)[-2:])
    n, k = len(imgs), 1 + len(columns)
    fig, axes = plt.subplots(n, k, figsize=(panel * k, panel * n + (0.4 if title else 0)), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(imgs[i], cmap="gray", vmin=-1024, vmax=1024)
        axes[i, 0].set_title(row_titles[i] if row_titles else "image", fontsize=7)
        for j, (name, maps) in enumerate(columns.items(), start=1):
            m = _np(maps).reshape(n, *imgs.shape[-2:])[i]
            ax = axes[i, j]
            if (overlay or {}).get(name, True):
                ax.imshow(imgs[i], cmap="gray", vmin=-1024, vmax=1024)
            if m.min() < 0:
                lim = max(abs(m.min()), abs(m.max()), 1e-12)
                ax.imshow(m, cmap="bwr", vmin=-lim, vmax=lim, alpha=0.75)
            else:
                shown = np.ma.masked_less_equal(m, 0) if (overlay or {}).get(name, True) else m
                ax.imshow(shown, cmap=cmap, vmin=0, vmax=max(float(m.max()), 1e-12), alpha=0.8)
            if i == 0:
                ax.set_title(name, fontsize=8)
        if masks is not None and masks[i] is not None:
            for ax in axes[i]:
                ax.contour(np.asarray(masks[i], float), levels=[0.5], colors="cyan", linewidths=0.7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_insertion_deletion(insertion: Mapping[str, PerturbationCurves], deletion: Mapping[str, PerturbationCurves]) -> Figure:
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
    """Grouped bars of a task x method IoU table (rows: tasks and ``mean``, columns: methods)."""
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
    for ax, metric in zip(axes, ("AUC", "IoU")):
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
