"""Figures of :mod:`chexp.experiments.shortcut`: a planted shortcut and what each explanation shows.

* :func:`plot_reliance`: each case's measured device effect against its finding effect, per model.
* :func:`plot_mass_fractions`: per method, the mean share of the map's mass on the device, on the
  finding and elsewhere, shortcut model beside clean model (stacked bars, dots per image).
* :func:`plot_tracking`: per method, each image's device share against its measured device
  effect (both models), with Spearman's rho.
* :func:`plot_example_maps`: one case, a row per model: the image, then every method's map, with
  the device (red) and the finding (cyan) outlined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..experiments.shortcut import REGIONS, ShortcutCases, ShortcutStudy, bootstrap_spearman

__all__ = ["MODEL_COLORS", "REGION_COLORS", "plot_example_maps", "plot_mass_fractions", "plot_reliance",
           "plot_tracking"]

#: Colour of each region in the bars and of its outline on the images.
REGION_COLORS: dict[str, str] = {"device": "tab:red", "finding": "tab:cyan", "elsewhere": "0.75"}
#: Colour of each model in the scatter plots.
MODEL_COLORS: dict[str, str] = {"shortcut": "tab:red", "clean": "tab:blue"}


def _model_color(name: str, k: int) -> str:
    return MODEL_COLORS.get(name, plt.get_cmap("tab10").colors[k % 10])


def plot_reliance(reliance: pd.DataFrame, effect_unit: str = "logit") -> Figure:
    """Each case's device effect (x) against its finding effect (y), one colour per model.

    Args:
        reliance: :attr:`~chexp.experiments.shortcut.ShortcutStudy.reliance`.
        effect_unit: the unit of the effects, for the axis labels.
    """
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    for k, (model, rows) in enumerate(reliance.groupby("model", sort=False)):
        ax.scatter(rows["device_effect"], rows["finding_effect"], s=16, color=_model_color(str(model), k),
                   label=f"{model}: device effect {rows['device_effect'].mean():+.2f}")
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel(f"device effect: f(x) - f(x without device)  [{effect_unit}]")
    ax.set_ylabel(f"finding effect  [{effect_unit}]")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_mass_fractions(fractions: pd.DataFrame, models: Sequence[str] = ("shortcut", "clean")) -> Figure:
    """Stacked bars of the mean mass share per region, for each method and model (side by side),
    with every image's device share as a dot and the device's share of the image dashed.

    Args:
        fractions: :attr:`~chexp.experiments.shortcut.ShortcutStudy.fractions`.
        models: the models shown, in this order.
    """
    methods = list(dict.fromkeys(fractions["method"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 + 1.25 * len(methods)), 4.0))
    width = 0.8 / len(models)
    for i, method in enumerate(methods):
        for j, model in enumerate(models):
            rows = fractions[(fractions["method"] == method) & (fractions["model"] == model)]
            x = i + (j - (len(models) - 1) / 2) * width
            bottom = 0.0
            for region in REGIONS:
                share = float(rows[region].mean())
                ax.bar(x, share, width * 0.9, bottom=bottom, color=REGION_COLORS[region],
                       edgecolor="k" if model == models[0] else "none", linewidth=0.6,
                       label=region if i == 0 and j == 0 else None)
                bottom += share
            ax.plot(np.full(len(rows), x), rows["device"], "k.", ms=2.5)
            ax.text(x, 1.01, model[0], ha="center", va="bottom", fontsize=7)
        ax.hlines(fractions[fractions["method"] == method]["device_area"].mean(), i - 0.45, i + 0.45,
                  colors="k", linestyles="--", lw=0.8, label="device's share of the image" if i == 0 else None)
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("share of the map's mass")
    ax.set_title(" / ".join(f"{m[0]} = {m}" for m in models) + " (outlined: first)", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_tracking(fractions: pd.DataFrame, effect: str = "device_effect", n_bootstrap: int = 1000,
                  seed: int = 0, ncols: int = 4) -> Figure:
    """One scatter per method: each image's device share (y) against its measured ``effect`` (x),
    coloured by model, titled with Spearman's rho (both models pooled) and its bootstrap interval.
    """
    methods = list(dict.fromkeys(fractions["method"]))
    nrows = -(-len(methods) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.4 * nrows), squeeze=False)
    for ax, method in zip(axes.flat, methods, strict=False):
        rows = fractions[fractions["method"] == method]
        for k, (model, sub) in enumerate(rows.groupby("model", sort=False)):
            ax.scatter(sub[effect], sub["device"], s=10, color=_model_color(str(model), k), label=str(model))
        rho, low, high = bootstrap_spearman(rows["device"].to_numpy(), rows[effect].to_numpy(), n_bootstrap, seed)
        ax.set_title(f"{method}\nrho (both models) {rho:.2f} [{low:.2f}, {high:.2f}]", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("device share", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel(effect.replace("_", " "), fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_example_maps(study: ShortcutStudy, index: int = 0, methods: Sequence[str] | None = None,
                      per_row: int = 2) -> Figure:
    """One case: the image and every method's ``|map|`` (each scaled to its own 99th percentile),
    each shown for every model side by side (``per_row`` images or methods to a row), with the
    device outlined in red and the finding in cyan; each title gives the map's device and finding
    shares (the image's: the measured effects)."""
    cases: ShortcutCases = study.cases
    models = list(study.maps)
    methods = list(methods or next(iter(study.maps.values())))
    items = [None, *methods]  # None: the image itself
    nrows = -(-len(items) // per_row)
    ncols = per_row * len(models)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.45 * nrows), squeeze=False)
    outlines: Mapping[str, np.ndarray] = {"device": cases.device_masks[index], "finding": cases.finding_masks[index]}
    fr = study.fractions
    case = cases.indices[index]
    for k, method in enumerate(items):
        for m, model in enumerate(models):
            ax = axes[k // per_row, (k % per_row) * len(models) + m]
            if method is None:
                rel = study.reliance[(study.reliance["model"] == model) & (study.reliance["index"] == case)].iloc[0]
                ax.imshow(cases.images[index, 0].numpy(), cmap="gray", vmin=-1024, vmax=1024)
                ax.set_title(f"image · {model}\ndevice effect {rel['device_effect']:+.2f}, "
                             f"finding {rel['finding_effect']:+.2f}", fontsize=7)
            else:
                a = np.abs(study.maps[model][method][index])
                ax.imshow(a, cmap="magma", vmin=0, vmax=max(float(np.percentile(a, 99)), 1e-12))
                row = fr[(fr["model"] == model) & (fr["method"] == method) & (fr["index"] == case)].iloc[0]
                ax.set_title(f"{method} · {model}\ndevice {row['device']:.2f} · finding {row['finding']:.2f}",
                             fontsize=7)
            for region, mask in outlines.items():
                ax.contour(mask.astype(float), levels=[0.5], colors=REGION_COLORS[region], linewidths=0.6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(items) * len(models):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
