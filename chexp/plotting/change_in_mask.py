"""Figures of :mod:`chexp.experiments.change_in_mask`: how much of a change lies on the finding.

* :func:`plot_in_mask_fractions`: per finding, the mean in-mask fraction of each change (bars)
  with every image (dots) and the mask's share of the image (dashed).
* :func:`plot_change_maps`: one case: the image with the mask outlined, then ``|change|`` of each
  kind with the mask's outline.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..experiments.change_in_mask import COLUMNS, PhantomCases, in_mask_fraction

__all__ = ["LABELS", "plot_in_mask_fractions", "plot_change_maps"]

#: Display names of the measured changes.
LABELS = {
    "latent_shift": "Latent Shift",
    "input_gradient": "input gradient",
    "ideal_classifier_shift": "ideal classifier's shift",
    "autoencoder_pair": "autoencoder, true removal",
}


def plot_in_mask_fractions(table: pd.DataFrame, goal: float | None = 0.6) -> Figure:
    """Bars of the mean in-mask fraction per finding and change, dots for the images.

    Args:
        table: rows of :func:`~chexp.experiments.change_in_mask.change_in_mask` (one or more
            findings concatenated).
        goal: a horizontal line at this fraction (``None``: none).
    """
    findings = list(dict.fromkeys(table["finding"]))
    kinds = [c for c in COLUMNS if c != "mask_share"]
    fig, ax = plt.subplots(figsize=(2.2 + 2.0 * len(findings), 3.6))
    width = 0.8 / len(kinds)
    colors = plt.get_cmap("tab10").colors
    for i, finding in enumerate(findings):
        rows = table[table["finding"] == finding]
        for j, kind in enumerate(kinds):
            x = i + (j - (len(kinds) - 1) / 2) * width
            ax.bar(x, rows[kind].mean(), width * 0.9, color=colors[j], label=LABELS[kind] if i == 0 else None)
            ax.plot(np.full(len(rows), x), rows[kind], "k.", ms=3)
        share = rows["mask_share"].mean()
        ax.hlines(share, i - 0.45, i + 0.45, colors="gray", linestyles="--",
                  label="mask's share of the image" if i == 0 else None)
    if goal is not None:
        ax.axhline(goal, color="crimson", lw=0.8, label=f"goal {goal:g}")
    ax.set_xticks(range(len(findings)), findings)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of sum |change| inside the mask")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_change_maps(cases: PhantomCases, maps: Mapping[str, torch.Tensor], index: int = 0) -> Figure:
    """The image (mask outlined in red) and ``|change|`` of each kind in ``maps`` for one case,
    each scaled to its own 99th percentile, with its in-mask fraction in the title."""
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(2.4 * (1 + len(maps)), 2.7))
    mask = cases.masks[index].numpy()
    axes[0].imshow(cases.images[index, 0].numpy(), cmap="gray", vmin=-1024, vmax=1024)
    axes[0].contour(mask, levels=[0.5], colors="red", linewidths=0.7)
    axes[0].set_title(f"{cases.finding} (phantom {cases.indices[index]})", fontsize=8)
    for ax, (name, change) in zip(axes[1:], maps.items(), strict=True):
        a = change[index].abs().numpy()
        ax.imshow(a, cmap="magma", vmin=0, vmax=max(float(np.percentile(a, 99)), 1e-12))
        ax.contour(mask, levels=[0.5], colors="cyan", linewidths=0.6)
        frac = in_mask_fraction(change[index : index + 1], cases.masks[index : index + 1])[0]
        ax.set_title(f"{LABELS.get(name, name)}\nin mask: {frac:.2f}", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
