"""Figures of Latent Shift explanations.

* :func:`plot_prediction_curve`: prediction versus lambda (paper Fig. 3), with the search's
  evaluated points and bounds marked; a dense curve can be passed in (from
  :meth:`chexp.latentshift.LatentShift.prediction_curve`).
* :func:`plot_frames`: five frames (the bounds and evenly between, :func:`frame_picks`) with
  lambda and prediction in each title, and below each its difference to the reconstruction
  (paper Fig. 1A).
* :func:`plot_flow`: optical flow between consecutive frames drawn as block-averaged, magnified
  arrows on the frames (paper Fig. 1B).
* :func:`plot_heatmap`: the 2D map over the input.

A bound whose side of the lambda search did not reach its rule's level (``converged`` False: the
curve turned first, the bound is the best evaluated lambda) is marked in every figure: its frame
title says ``not converged`` and its line on the prediction curve is red and dashed.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..latentshift.animation import optical_flow
from ..latentshift.core import LatentShiftExplanation

__all__ = ["frame_picks", "plot_prediction_curve", "plot_frames", "plot_flow", "plot_heatmap"]


def plot_prediction_curve(
    explanation: LatentShiftExplanation,
    index: int = 0,
    ax: Axes | None = None,
    curve: tuple[Sequence[float], Sequence[float]] | None = None,
    label: str | None = None,
) -> Axes:
    """Prediction of the target versus lambda for one image (paper Fig. 3).

    Args:
        curve: optional dense ``(lambdas, predictions)`` drawn as a line.
        label: legend label of this curve (e.g. the model's name, to overlay several models).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    lams = explanation.lambdas[index].numpy()
    preds = explanation.predictions[index].numpy()
    if curve is not None:
        ax.plot(curve[0], curve[1], "-", lw=1.5, label=label or "prediction")
        ax.plot(lams, preds, "o", ms=4, label="frames")
    else:
        ax.plot(lams, preds, "o-", ms=4, label=label or "frames")
    trace = np.array(explanation.traces[index]) if explanation.traces else np.zeros((0, 2))
    if len(trace):
        ax.plot(trace[:, 0], trace[:, 1], "x", color="0.4", ms=5, label="search evaluations")
    for side, bound in enumerate(explanation.bounds[index].tolist()):
        if bool(explanation.converged[index, side]):
            ax.axvline(bound, color="0.6", ls=":", lw=1)
        else:
            ax.axvline(bound, color="tab:red", ls="--", lw=1, label=f"{('lower', 'upper')[side]} bound, not converged")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("lambda shift")
    ax.set_ylabel(f"prediction of {explanation.target}")
    ax.legend(fontsize=7)
    return ax


def frame_picks(n_frames: int, n: int) -> np.ndarray:
    """Indices of ``n`` of ``n_frames`` frames: the first and last (the search's bounds) and,
    between them, the frames nearest to evenly spaced positions (exactly evenly spaced lambdas
    when ``n - 1`` divides ``n_frames - 1``); all frames when ``n >= n_frames``."""
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, n)).round().astype(int))


def _blank_axis(ax: Axes) -> None:
    """No ticks and no frame, but room for a row label (``set_ylabel``)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_frames(
    explanation: LatentShiftExplanation, index: int = 0, max_frames: int = 5, frame_inches: float = 2.2
) -> Figure:
    """Frames (top row) and their difference to the reconstruction (bottom row), paper Fig. 1A.

    Args:
        explanation: a :class:`~chexp.latentshift.LatentShiftExplanation`.
        index: which image of the batch.
        max_frames: frames shown, chosen by :func:`frame_picks` (the bounds and evenly between).
        frame_inches: width and height of each frame in the figure (inches).

    Returns:
        A figure with ``2 x k`` image axes (``k = min(max_frames, T)``), frame axes first. Each
        frame is titled with its lambda and prediction (and ``not converged`` on a bound whose
        search did not reach its rule's level); the bottom row shows ``frame - D(E(x))`` in
        intensity units on a diverging colormap symmetric around 0, with one shared colorbar.
    """
    picks = frame_picks(explanation.frames.shape[1], max_frames)
    frames = explanation.frames[index, picks, 0].cpu().numpy()
    diffs = frames - explanation.reconstruction[index, 0].cpu().numpy()
    limit = max(float(np.abs(diffs).max()), 1e-6)
    n = len(picks)
    fig, axes = plt.subplots(2, n, figsize=(n * (frame_inches + 0.2) + 1.2, 2 * frame_inches + 1.1),
                             squeeze=False, layout="constrained")
    for j, k in enumerate(picks):
        flag = explanation.frame_flag(index, int(k)).replace(" (", "\n(")
        axes[0, j].imshow(frames[j], cmap="gray", vmin=-1024, vmax=1024)
        axes[0, j].set_title(f"λ = {float(explanation.lambdas[index, k]):+.3g}\n"
                             f"p = {float(explanation.predictions[index, k]):.2f}{flag}", fontsize=13)
        shown = axes[1, j].imshow(diffs[j], cmap="RdBu_r", vmin=-limit, vmax=limit)
        for ax in axes[:, j]:
            _blank_axis(ax)
    axes[0, 0].set_ylabel("frame", fontsize=13)
    axes[1, 0].set_ylabel("frame − D(E(x))", fontsize=13)
    bar = fig.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.9)
    bar.set_label("frame − D(E(x)), intensity (red: brighter)", fontsize=11)
    bar.ax.tick_params(labelsize=10)
    return fig


def _block_mean(field: np.ndarray, step: int) -> np.ndarray:
    """Mean of ``(..., H, W)`` over ``step x step`` blocks (trailing rows/columns dropped)."""
    h, w = (d // step * step for d in field.shape[-2:])
    blocks = field[..., :h, :w].reshape(*field.shape[:-2], h // step, step, w // step, step)
    return blocks.mean(axis=(-3, -1))


def plot_flow(
    explanation: LatentShiftExplanation,
    index: int = 0,
    step: int | None = None,
    method: str = "tvl1",
    max_panels: int = 4,
    columns: int = 2,
    panel_inches: float = 2.8,
    longest: float = 1.4,
    min_fraction: float = 0.25,
) -> Figure:
    """Optical flow between consecutive frames as arrows over the frames (paper Fig. 1B).

    The flow (:func:`chexp.latentshift.optical_flow`) is averaged over ``step x step`` blocks
    and drawn as one arrow per block at its centre, coloured by its length, over the frame in
    grey. Consecutive frames differ by a fraction of a pixel, so every arrow is magnified by one
    gain shared by all panels (written in the title), chosen so that the longest arrow spans
    ``longest`` blocks; arrows shorter than ``min_fraction`` of the longest are left out.

    Args:
        step: block size in pixels (default: a twelfth of the image side).
        max_panels: flows shown, between frames chosen evenly from the first to the last.
        columns: panels per row (2: a figure of 4 panels stays legible at the width of a page).
        panel_inches: width and height of each panel (inches).

    Returns:
        A figure with one image axis per panel (each holding one quiver) and a colorbar of the
        flow in pixels per frame step.
    """
    frames = explanation.frames[index, :, 0].cpu().numpy()
    flow = optical_flow(frames, method=method)
    h, w = frames.shape[-2:]
    step = step or max(2, min(h, w) // 12)
    picks = frame_picks(len(flow), max_panels)
    blocks = _block_mean(flow[picks], step)  # (P, 2, h', w'): row and column displacement
    length = np.hypot(blocks[:, 0], blocks[:, 1])
    top = max(float(length.max()), 1e-9)
    gain = longest * step / top
    rows, cols = np.mgrid[0 : blocks.shape[-2], 0 : blocks.shape[-1]] * step + (step - 1) / 2
    columns = min(columns, len(picks))
    n_rows = -(-len(picks) // columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(columns * (panel_inches + 0.2) + 1.2,
                                                        n_rows * (panel_inches + 0.4) + 0.5),
                             squeeze=False, layout="constrained")
    for ax, k, field, size in zip(axes.flat, picks, blocks, length, strict=False):
        keep = size >= min_fraction * top
        ax.imshow(frames[k], cmap="gray", vmin=-1024, vmax=1024)
        arrows = ax.quiver(cols[keep], rows[keep], field[1][keep], field[0][keep], size[keep], cmap="plasma",
                           clim=(0, top), angles="xy", scale_units="xy", scale=1 / gain, width=0.012,
                           headwidth=3.5, headlength=4, headaxislength=3.5, pivot="mid")
        ax.set_title(f"frame {k} → {k + 1}", fontsize=11)
        _blank_axis(ax)
    for ax in axes.flat[len(picks):]:
        ax.remove()
    fig.suptitle(f"arrows magnified {gain:.0f}× (longest {top:.3f} px per frame step)", fontsize=11)
    fig.colorbar(arrows, ax=axes.ravel().tolist()[: len(picks)], shrink=0.8, label="flow (px per frame step)")
    return fig


def plot_heatmap(explanation: LatentShiftExplanation, index: int = 0, ax: Axes | None = None,
                 mask: np.ndarray | None = None) -> Axes:
    """The 2D map over the input (zeros transparent), optionally a ground-truth mask contour."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(explanation.inputs[index, 0].cpu().numpy(), cmap="gray", vmin=-1024, vmax=1024)
    heat = explanation.heatmap[index].cpu().numpy().astype(float)
    heat = np.where(heat > 0, heat, np.nan)
    ax.imshow(heat, cmap="Reds", alpha=0.7)
    if mask is not None:
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="yellow", linewidths=0.8)
    ax.set_title(f"latentshift-{explanation.map_method}: {explanation.target}", fontsize=8)
    ax.axis("off")
    return ax
