"""Figures of the Gifsplanation appendices D.2B, G and I/J.

==============================  ==================================================================
:func:`plot_robustness`         IoU against the noise / blur scale, a panel per perturbation and
                                task, a line per method with its 95 % CI as a band (Fig. G.1)
:func:`plot_depth_sweep`        MAE and IoU against the autoencoder's depth, coloured by the
                                training epoch (Fig. D.2B)
:func:`plot_gallery`            rows of Latent Shift explanations: input, frames from the
                                counterfactual to the exaggerated image, latentshift-max map
                                (Fig. I.1, I.2 / J.1)
==============================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..experiments.galleries import Gallery
from ..experiments.robustness import PERTURBATIONS
from .maps import GIFSPLANATION, MapStyle

__all__ = ["plot_depth_sweep", "plot_gallery", "plot_robustness"]


def plot_robustness(summary: pd.DataFrame, methods: Sequence[str] | None = None,
                    tasks: Sequence[str] | None = None) -> Figure:
    """Mean IoU against the scale of each perturbation (rows) for each task (columns), one line
    per method, its 95 % bootstrap CI as a band (paper Fig. G.1).

    Args:
        summary: :func:`chexp.experiments.iou.summarize_iou` of
            :func:`chexp.experiments.robustness.robustness_iou`'s table grouped by
            ``("perturbation", "scale", "task", "method")``.
        methods, tasks: which and in what order (default: as they appear).
    """
    perturbations = list(dict.fromkeys(summary["perturbation"]))
    tasks = list(tasks) if tasks is not None else list(dict.fromkeys(summary["task"]))
    methods = list(methods) if methods is not None else list(dict.fromkeys(summary["method"]))
    fig, axes = plt.subplots(len(perturbations), len(tasks), figsize=(2.8 * len(tasks), 2.4 * len(perturbations)),
                             squeeze=False, sharey=True)
    colors = plt.get_cmap("tab10")
    for r, name in enumerate(perturbations):
        for c, task in enumerate(tasks):
            ax = axes[r, c]
            for k, method in enumerate(methods):
                s = summary[(summary["perturbation"] == name) & (summary["task"] == task)
                            & (summary["method"] == method)].sort_values("scale")
                ax.plot(s["scale"], s["mean"], "-o", ms=3, lw=1.2, color=colors(k), label=method)
                ax.fill_between(s["scale"], s["ci_low"], s["ci_high"], color=colors(k), alpha=0.15, lw=0)
            ax.set_title(f"{task}: {name}", fontsize=8)
            ax.set_xlabel(PERTURBATIONS[name].label if name in PERTURBATIONS else name, fontsize=7)
            ax.tick_params(labelsize=7)
        axes[r, 0].set_ylabel("IoU (mean, 95 % CI)", fontsize=8)
    axes[0, -1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_depth_sweep(table: pd.DataFrame) -> Figure:
    """Held-out MAE (left) and latentshift-max IoU (right, ± std) against the autoencoder's depth,
    one point per depth and training epoch, coloured by the epoch (paper Fig. D.2B).

    Args:
        table: :func:`chexp.experiments.autoencoder_depth.depth_study`'s table.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained")
    epochs = table["epoch"].to_numpy()
    ticks = np.unique(epochs)
    cmap = plt.get_cmap("viridis", len(ticks))
    norm = plt.Normalize(vmin=ticks[0] - 0.5, vmax=ticks[-1] + 0.5)
    spread = 0.25 / max(epochs.max() - 1, 1)  # epochs side by side around their depth
    x = table["depth"].to_numpy() + (epochs - (epochs.max() + 1) / 2) * spread
    for ax, column, label in ((axes[0], "mae", "validation MAE (intensity units)"),
                              (axes[1], "iou_mean", "IoU latentshift-max (mean ± std)")):
        if column == "iou_mean":
            ax.errorbar(x, table[column], yerr=table["iou_std"], fmt="none", ecolor="0.7", lw=0.8, zorder=1)
        points = ax.scatter(x, table[column], c=epochs, cmap=cmap, norm=norm, s=28, zorder=2)
        ax.set_xticks(sorted(table["depth"].unique()))
        ax.set_xlabel("autoencoder depth (stride-2 levels)")
        ax.set_ylabel(label)
    fig.colorbar(points, ax=axes, label="training epoch", ticks=ticks)
    return fig


def _row_title(group: str, row: pd.Series) -> str:
    kind = "positive" if row["label"] == 1 else "negative" if row["label"] == 0 else "unlabelled"
    below = " (below threshold)" if "predicted_positive" in row and not row["predicted_positive"] else ""
    return f"{group}{below}\n{row['sample']}, {kind}\np={row['prediction']:.2f}"


def plot_gallery(galleries: Mapping[str, Gallery], n_frames: int = 4, top_fraction: float | None = None,
                 style: MapStyle = GIFSPLANATION, title: str | None = None) -> Figure:
    """One row per explained image: the input, ``n_frames`` frames from the lower λ bound (the
    counterfactual) to the upper one, then the latentshift-max map over the input; the ground-truth
    outline on the input and the map (paper Fig. I.1, I.2 / J.1).

    Args:
        galleries: group name (a task, or "true positive" / "false positive") -> :class:`Gallery`;
            rows follow this order.
        n_frames: frames shown per row, evenly spaced over the explanation's frames.
        top_fraction: colour only this fraction of each map's highest pixels (``None``: all).
        title: figure title.
    """
    rows = [(group, g, i) for group, g in galleries.items() for i in range(len(g))]
    cols = 2 + int(n_frames)
    fig, axes = plt.subplots(len(rows), cols, figsize=(style.panel * cols, style.panel * len(rows) + 0.6),
                             squeeze=False)
    for r, (group, gallery, i) in enumerate(rows):
        e, row, mask = gallery.explanation, gallery.table.iloc[i], gallery.masks[i]
        image = e.inputs[i, 0].cpu().numpy()
        style.image(axes[r, 0], image)
        axes[r, 0].set_ylabel(_row_title(group, row), fontsize=6)
        picks = np.unique(np.linspace(0, e.frames.shape[1] - 1, int(n_frames)).round().astype(int))
        for j, t in enumerate(picks, start=1):
            style.image(axes[r, j], e.frames[i, t, 0].cpu().numpy())
            axes[r, j].set_title(f"λ={float(e.lambdas[i, t]):+.3g} p={float(e.predictions[i, t]):.2f}", fontsize=6)
        for ax in axes[r, len(picks) + 1 : -1]:
            ax.axis("off")
        style.draw(axes[r, -1], image, e.heatmap[i].cpu().numpy(), top_fraction)
        axes[r, -1].set_title("map" if np.isnan(row["iou"]) else f"map, IoU {row['iou']:.2f}", fontsize=6)
        if mask.any():
            style.contour(axes[r, 0], mask)
            style.contour(axes[r, -1], mask)
    axes[0, 0].set_title("input", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
