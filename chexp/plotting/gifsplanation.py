"""Figures of the Gifsplanation (Latent Shift) chapters.

==============================  ==================================================================
:func:`plot_bottleneck`         reconstructions and latentshift-max maps per bottleneck (Fig. 2, D.1)
:func:`plot_mae_vs_iou`         reconstruction error against IoU per bottleneck (Fig. D.2)
:func:`plot_curves_by_task`     prediction versus lambda, one panel per task (Fig. 3)
:func:`flat_curve_notes`        why a flat curve of Fig. 3 shows nothing (written in its panel)
:func:`shift_grid_frames`       a mosaic per lambda (rows models, columns tasks) for a slider
:func:`plot_iou_bars`           Table 1 as bars with bootstrap CIs
:func:`plot_iou_bars_by_classifier`  the same, a panel row per classifier compared
:func:`plot_randomization_panels`  Fig. 5 with several similarity measures
:func:`plot_reader_differences` paired rating differences, TP and FP (Fig. F.3/F.4)
:func:`plot_search_rules`       prediction curves with each rule's bounds marked (Appendix C)
:func:`outline_rgb`             grayscale images with mask outlines drawn in colour (sliders)
:func:`side_by_side_frames`     frames of several explanations side by side, for one slider
:func:`gif_html`                an animation file embedded in an ``<img>`` (static pages)
==============================  ==================================================================

The map grids (Fig. 4, E.1, B.1, and one row per example for a slider) are
:func:`chexp.plotting.maps.map_grid` and :func:`~chexp.plotting.maps.map_grid_figures` with
:data:`~chexp.plotting.maps.GIFSPLANATION`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..latentshift.search import PaperSearch
from ..metrics.randomization import RandomizationResult
from ..models.base import Classifier
from .maps import GIFSPLANATION
from .metrics import plot_randomization

__all__ = [
    "gif_html",
    "outline_rgb",
    "FLAT_RANGE",
    "RECONSTRUCTION_LOSS",
    "SATURATED",
    "flat_curve_note",
    "flat_curve_notes",
    "plot_bottleneck",
    "plot_curves_by_task",
    "plot_iou_bars",
    "plot_iou_bars_by_classifier",
    "plot_mae_vs_iou",
    "plot_randomization_panels",
    "plot_reader_differences",
    "plot_search_rules",
    "shift_grid_frames",
    "side_by_side_frames",
]

def plot_bottleneck(models: Sequence, index: int = 0, mask: np.ndarray | None = None,
                    top_fraction: float | None = 0.05) -> Figure:
    """Per bottleneck: the reconstruction (top) and the latentshift-max map over the input (bottom).

    Args:
        models: :class:`chexp.experiments.bottleneck.BottleneckModel` list (with explanations).
        index: which study image.
        top_fraction: fraction of the map shown (the paper's Fig. 2 shows the top 5 %).
    """
    fig, axes = plt.subplots(2, len(models) + 1, figsize=(2.1 * (len(models) + 1), 4.5), squeeze=False)
    first = models[0].explanation
    image = first.inputs[index, 0].cpu().numpy()
    GIFSPLANATION.image(axes[0, 0], image)
    axes[0, 0].set_title("input", fontsize=8)
    axes[1, 0].axis("off")
    for j, m in enumerate(models, start=1):
        e = m.explanation
        GIFSPLANATION.image(axes[0, j], e.reconstruction[index, 0].cpu().numpy())
        axes[0, j].set_title(f"latent {m.latent_channels}x{int(np.sqrt(m.latent_size // m.latent_channels))}²"
                             f" = {m.latent_size}\nMAE {m.mae:.1f}", fontsize=7)
        GIFSPLANATION.draw(axes[1, j], image, e.heatmap[index].cpu().numpy(), top_fraction)
        if mask is not None:
            GIFSPLANATION.contour(axes[1, j], mask)
        axes[1, j].set_title(f"IoU {m.iou[index]:.2f}", fontsize=7)
    axes[0, 0].set_ylabel("reconstruction", fontsize=8)
    fig.tight_layout()
    return fig


def plot_mae_vs_iou(table: pd.DataFrame, ax=None):
    """Held-out MAE against mean IoU, one point per autoencoder, labelled by latent size (Fig. D.2)."""
    ax = ax or plt.subplots(figsize=(4.2, 3.2))[1]
    ax.errorbar(table["mae"], table["iou_mean"], yerr=table["iou_std"], fmt="o", capsize=3)
    for _, row in table.iterrows():
        ax.annotate(f"{int(row['latent_size'])}", (row["mae"], row["iou_mean"]), textcoords="offset points",
                    xytext=(5, 4), fontsize=7)
    ax.set_xlabel("validation MAE (intensity units)")
    ax.set_ylabel("IoU latentshift-max (mean ± std)")
    ax.set_title("bottleneck size (labels: latent values)", fontsize=8)
    return ax


#: A prediction curve whose range (max - min) is below this shows little: its panel says why.
FLAT_RANGE = 0.2
#: A prediction on the reconstruction within this of 0 or 1 is saturated (sigmoid gradient ~ 0).
SATURATED = 0.05
#: The reconstruction loses the finding when the prediction falls by this much from x to D(E(x)).
RECONSTRUCTION_LOSS = 0.3


def flat_curve_note(
    predictions: Sequence[float],
    on_reconstruction: float,
    on_input: float | None = None,
    positive: bool | None = None,
    threshold: float = FLAT_RANGE,
    search: PaperSearch | None = None,
) -> str | None:
    """Why a prediction-versus-lambda curve shows little, or ``None`` when it moves enough.

    A curve is flat when ``max - min`` of ``predictions`` is below ``threshold``. The note names
    its range and every cause that applies, in this order: the image is not labelled with the
    finding (``positive`` False); the reconstruction loses the finding (the prediction on ``x``
    exceeds the one on ``D(E(x))`` by :data:`RECONSTRUCTION_LOSS` or more); the prediction on
    the reconstruction is saturated (within :data:`SATURATED` of 0 or 1, where a sigmoid's
    gradient, hence the latent shift direction, vanishes); else, the lambda range comes from
    ``search``'s bounds, whose fall and rise (relative to the prediction on ``D(E(x))``) ask
    for a change below ``threshold``. None applying, the latent direction changes this
    prediction little over the range shown.

    Args:
        predictions: ``(L,)`` probabilities along the lambda grid, in [0, 1].
        on_reconstruction: the prediction on ``D(E(x))`` (lambda = 0).
        on_input: the prediction on the input ``x`` (unknown: ``None``).
        positive: whether the image is labelled with the finding (unknown: ``None``).
        search: the section 4.2 search whose bounds set the lambda range (unknown: ``None``).
    """
    p = np.asarray(predictions, dtype=float)
    spread = float(p.max() - p.min())
    if spread >= threshold:
        return None
    causes = []
    if positive is False:
        causes.append("this image is not labelled with the finding")
    if on_input is not None and on_input - on_reconstruction >= RECONSTRUCTION_LOSS:
        causes.append(f"the reconstruction loses the finding (p = {on_input:.2f} on x, "
                      f"{on_reconstruction:.2f} on D(E(x)))")
    if min(on_reconstruction, 1.0 - on_reconstruction) < SATURATED:
        causes.append(f"p on D(E(x)) is saturated at {on_reconstruction:.2f}, where the "
                      "sigmoid's gradient (the shift direction) is near 0")
    if search is not None and min(on_reconstruction, 1.0 - on_reconstruction) >= SATURATED:
        scale = abs(on_reconstruction) if search.relative else 1.0
        if search.fall * scale < threshold:
            causes.append(f"the λ range holds the {search.name!r} search's bounds, a {search.fall:.0%} fall and "
                          f"a {search.rise:.0%} rise from p = {on_reconstruction:.2f} on D(E(x)): they ask "
                          f"p to move by only {search.fall * scale:.2f} and {search.rise * scale:.2f}")
    why = "; ".join(causes) or "the latent shift changes this prediction little over the range shown"
    return f"flat: p moves only {p[0]:.2f} → {p[-1]:.2f} (range {spread:.2f} < {threshold:g}): {why}"


def flat_curve_notes(
    curves: pd.DataFrame,
    classifiers: Mapping[str, Classifier] | None = None,
    image: torch.Tensor | None = None,
    labels: Mapping[str, float] | None = None,
    threshold: float = FLAT_RANGE,
    search: PaperSearch | None = None,
) -> dict[tuple[str, str], str]:
    """:func:`flat_curve_note` of every flat (model, task) curve of a
    :class:`~chexp.experiments.curves.ShiftGrid`'s ``curves`` table (model names as in
    ``classifiers``), keyed ``(model, task)``.

    Args:
        classifiers, image: the models and the ``(1, 1, H, W)`` image of the curves, to compare
            the prediction on the input with the one on the reconstruction (omitted: not compared).
        labels: task -> the image's label (1 positive, 0 negative, NaN unknown).
        search: the search whose bounds set the lambda ranges
            (:func:`~chexp.experiments.curves.lambda_ranges`; ``None``: not known).
    """
    scores = {}
    if classifiers is not None and image is not None:
        with torch.no_grad():
            scores = {name: clf(image)[0] for name, clf in classifiers.items()}
    label = {task: None if np.isnan(value) else bool(value == 1) for task, value in (labels or {}).items()}
    notes = {}
    for (model, task), g in curves.groupby(["model", "task"], sort=False):
        on_input = float(scores[model][classifiers[model].target_index(task)]) if model in scores else None
        note = flat_curve_note(g.sort_values("step")["prediction"], float(g["initial"].iloc[0]),
                               on_input, label.get(task), threshold, search)
        if note is not None:
            notes[(model, task)] = note
    return notes


def plot_curves_by_task(curves: pd.DataFrame, tasks: Sequence[str] | None = None,
                        notes: Mapping[tuple[str, str], str] | None = None, columns: int = 2,
                        panel_inches: tuple[float, float] = (3.8, 3.0)) -> Figure:
    """Prediction against lambda, one panel per task and one line per model (paper Fig. 3).

    Args:
        curves: a :class:`~chexp.experiments.curves.ShiftGrid`'s ``curves`` table.
        notes: (model, task) -> a note written in that task's panel (:func:`flat_curve_notes`:
            why a flat curve shows nothing), prefixed by the model's name when several models
            share the panel.
        columns: panels per row (2 keeps a figure of 4 tasks legible at the width of a page).
        panel_inches: width and height of each panel.
    """
    import textwrap

    tasks = list(tasks) if tasks is not None else list(dict.fromkeys(curves["task"]))
    notes = notes or {}
    columns = min(columns, len(tasks))
    rows = -(-len(tasks) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_inches[0] * columns, panel_inches[1] * rows),
                             squeeze=False, sharey=True)
    several = curves["model"].nunique() > 1
    for ax, task in zip(axes.flat, tasks, strict=False):
        sub = curves[curves["task"] == task]
        for model, g in sub.groupby("model", sort=False):
            ax.plot(g["lambda"], g["prediction"], "-o", ms=3, lw=1.4, label=model)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_title(task, fontsize=11)
        ax.set_xlabel("λ", fontsize=10)
        text = "\n".join(textwrap.fill(f"{model}: {note}" if several else note, 52)
                         for (model, t), note in notes.items() if t == task)
        if text:
            high = float(sub["prediction"].mean()) > 0.5  # write where the curves are not
            ax.text(0.03, 0.04 if high else 0.96, text, transform=ax.transAxes, fontsize=7.5,
                    va="bottom" if high else "top", ha="left",
                    bbox={"boxstyle": "round", "facecolor": "lightyellow", "edgecolor": "0.6"})
    for ax in axes.flat[len(tasks):]:
        ax.remove()
    axes[0, 0].set_ylim(-0.03, 1.03)
    for ax in axes[:, 0]:
        ax.set_ylabel("prediction", fontsize=10)
    axes.flat[len(tasks) - 1].legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig


def shift_grid_frames(grid, models: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
                      pad: int = 2) -> tuple[np.ndarray, list[str]]:
    """A uint8 mosaic per lambda step of a :class:`~chexp.experiments.curves.ShiftGrid`:
    rows are models, columns tasks (missing pairs black). Returns frames ``(L, H', W')`` and
    one caption per step with every lambda and prediction."""
    keys = list(grid.frames)
    models = list(models) if models is not None else list(dict.fromkeys(k[0] for k in keys))
    tasks = list(tasks) if tasks is not None else list(dict.fromkeys(k[1] for k in keys))
    h, w = next(iter(grid.frames.values())).shape[-2:]
    n_l = grid.n_steps
    out = np.zeros((n_l, len(models) * (h + pad) - pad, len(tasks) * (w + pad) - pad), dtype=np.uint8)
    for r, m in enumerate(models):
        for c, t in enumerate(tasks):
            if (m, t) in grid.frames:
                f = np.clip((grid.frames[(m, t)] + 1024.0) / 2048.0, 0, 1) * 255 + 0.5
                out[:, r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = f.astype(np.uint8)
    captions = []
    for k in range(n_l):
        sub = grid.curves[grid.curves["step"] == k]
        parts = [f"{r.task[:5]}/{r.model[:10]} λ={r.lambda_:+.3g} p={r.prediction:.2f}"
                 for r in sub.rename(columns={"lambda": "lambda_"}).itertuples()]
        captions.append(f"step {k + 1}/{n_l}: " + ", ".join(parts))
    return out, captions


def plot_iou_bars(summary: pd.DataFrame, methods: Sequence[str] | None = None, ax=None):
    """Mean IoU per task and method with the bootstrap 95 % CI as error bars
    (``summary``: :func:`chexp.experiments.iou.summarize_iou`'s table)."""
    ax = ax or plt.subplots(figsize=(7, 3))[1]
    methods = list(methods) if methods is not None else list(dict.fromkeys(summary["method"]))
    tasks = list(dict.fromkeys(summary["task"]))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        s = summary[summary["method"] == m].set_index("task").reindex(tasks)
        err = np.vstack([s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]])
        ax.bar(np.arange(len(tasks)) + i * width, s["mean"], width, yerr=err, capsize=2, label=m)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, fontsize=8)
    ax.set_ylabel("IoU (top-p, p = mask area)")
    ax.legend(fontsize=6, ncol=4)
    return ax


def plot_iou_bars_by_classifier(summary: pd.DataFrame, methods: Sequence[str] | None = None) -> Figure:
    """:func:`plot_iou_bars` of each classifier of ``summary`` (its ``classifier`` column, as
    ``summarize_iou(..., by=("classifier", "task", "method"))`` gives it), a panel row each,
    titled with the classifier's name; one classifier gives :func:`plot_iou_bars`' figure alone."""
    names = list(dict.fromkeys(summary["classifier"]))
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 3 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        plot_iou_bars(summary[summary["classifier"] == name], methods, ax=ax)
        if len(names) > 1:
            ax.set_title(name, fontsize=9)
    if len(names) > 1:
        fig.tight_layout()
    return fig


def plot_randomization_panels(results: Mapping[str, RandomizationResult],
                              metrics: Sequence[str] = ("spearman", "ssim")) -> Figure:
    """:func:`chexp.plotting.metrics.plot_randomization` side by side for several similarity measures."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        plot_randomization(results, metric=metric, ax=ax)
    fig.tight_layout()
    return fig


def plot_reader_differences(diffs: pd.DataFrame, ax=None):
    """Counts of paired differences (Latent Shift minus traditional) for TP and FP (Fig. F.3/F.4)."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    values = np.arange(-4, 5)
    for k, (lab, name) in enumerate(((1, "true positive"), (0, "false positive"))):
        d = diffs.loc[diffs["label"] == lab, "difference"]
        counts = d.value_counts().reindex(values, fill_value=0)
        ax.bar(values + (k - 0.5) * 0.4, counts, 0.4, label=f"{name} (mean {d.mean():+.2f})")
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("confidence with Latent Shift minus with traditional maps")
    ax.set_ylabel("ratings (reader x example)")
    ax.legend(fontsize=7)
    return ax


def plot_search_rules(lambdas: np.ndarray, curve: np.ndarray, rows: pd.DataFrame, ax=None, title: str = ""):
    """A dense prediction curve of one image with each rule's bounds marked (Appendix C).

    Args:
        lambdas, curve: ``(L,)`` grid and predictions; rows: the image's rows of
            :func:`~chexp.experiments.lambda_search.search_comparison` (a side whose search did
            not converge is named in the rule's legend entry).
    """
    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    ax.plot(lambdas, curve, "-", color="0.3", lw=1.5, label="prediction")
    colors = plt.get_cmap("tab10")
    for k, r in enumerate(rows.itertuples()):
        c = colors(k)
        missed = [side for side in ("lower", "upper") if not getattr(r, f"{side}_converged", True)]
        flag = f", not converged: {' and '.join(missed)}" if missed else ""
        ax.axvline(r.lower, color=c, ls="--", lw=1.2,
                   label=f"{r.rule}: [{r.lower:.3g}, {r.upper:.3g}], {r.evaluations:.0f} evals{flag}")
        if r.upper != 0:
            ax.axvline(r.upper, color=c, ls=":", lw=1.2)
    ax.axvline(0, color="k", lw=0.6)
    nonzero = np.abs(np.concatenate([rows["lower"].to_numpy(), rows["upper"].to_numpy()]))
    nonzero = nonzero[nonzero > 0]
    if len(nonzero):  # bounds span orders of magnitude: linear near 0, logarithmic beyond
        ax.set_xscale("symlog", linthresh=float(nonzero.min()))
    ax.set_xlabel("lambda (symmetric log scale)")
    ax.set_ylabel("prediction")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6, loc="best")
    return ax


def outline_rgb(images: np.ndarray, masks: np.ndarray, show: np.ndarray, colors: Sequence) -> np.ndarray:
    """Grayscale images with mask boundaries drawn in colour.

    Args:
        images: ``(N, H, W)`` in [-1024, 1024]; masks: ``(N, K, H, W)`` bool;
        show: ``(N, K)`` bool, which masks to outline; colors: ``K`` matplotlib colours.

    Returns:
        float RGB ``(N, H, W, 3)`` in [0, 1].
    """
    from matplotlib.colors import to_rgb
    from skimage.segmentation import find_boundaries

    gray = np.clip((np.asarray(images, dtype=float) + 1024.0) / 2048.0, 0.0, 1.0)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for i in range(len(rgb)):
        for k, color in enumerate(colors):
            if show[i, k] and masks[i, k].any():
                rgb[i][find_boundaries(masks[i, k], mode="inner")] = to_rgb(color)
    return rgb


def side_by_side_frames(explanations: Sequence, labels: Sequence[str], index: int = 0,
                        pad: int = 2) -> tuple[np.ndarray, list[str]]:
    """Frame ``t`` of every explanation side by side, for ``t`` in ``0 .. T-1`` (same ``T``).

    Returns uint8 frames ``(T, H, k*W)`` and captions with each explanation's lambda and prediction
    (a bound frame whose search did not converge is marked ``not converged``).
    """
    from ..latentshift import to_uint8

    parts = [to_uint8(e.frames[index, :, 0]) for e in explanations]
    t, h, w = parts[0].shape
    out = np.zeros((t, h, len(parts) * (w + pad) - pad), dtype=np.uint8)
    for k, p in enumerate(parts):
        out[:, :, k * (w + pad) : k * (w + pad) + w] = p
    captions = ["  |  ".join(f"{lab}: λ={float(e.lambdas[index, i]):+.3g} p={float(e.predictions[index, i]):.2f}"
                             + e.frame_flag(index, i)
                             for lab, e in zip(labels, explanations, strict=True)) for i in range(t)]
    return out, captions


def gif_html(path, width: int = 320):
    """An ``IPython.display.HTML`` with the GIF at ``path`` embedded as a data URI."""
    import base64
    from pathlib import Path

    from IPython.display import HTML

    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return HTML(f'<img src="data:image/gif;base64,{data}" width="{width}" alt="{Path(path).name}">')
