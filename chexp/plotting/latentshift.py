"""Figures of Latent Shift explanations.

* :func:`plot_prediction_curve`: prediction versus lambda (paper Fig. 3), with the search's
  evaluated points and bounds marked; a dense curve can be passed in (from
  :meth:`chexp.latentshift.LatentShift.prediction_curve`).
* :func:`plot_frames`: the frames as a strip with lambda and prediction in each title.
* :func:`plot_flow`: optical flow between consecutive frames drawn as arrows on the frames
  (paper Fig. 1B).
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

__all__ = ["plot_prediction_curve", "plot_frames", "plot_flow", "plot_heatmap"]


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


def plot_frames(explanation: LatentShiftExplanation, index: int = 0, max_frames: int = 10) -> Figure:
    """A strip of (at most ``max_frames``) frames with lambda and prediction."""
    t = explanation.frames.shape[1]
    picks = np.unique(np.linspace(0, t - 1, min(t, max_frames)).round().astype(int))
    fig, axes = plt.subplots(1, len(picks), figsize=(1.6 * len(picks), 2.0), squeeze=False)
    for ax, k in zip(axes[0], picks, strict=True):
        ax.imshow(explanation.frames[index, k, 0].cpu().numpy(), cmap="gray", vmin=-1024, vmax=1024)
        ax.set_title(f"λ={float(explanation.lambdas[index, k]):+.3g}\np={float(explanation.predictions[index, k]):.2f}"
                     + explanation.frame_flag(index, int(k)).replace(" (", "\n("), fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_flow(
    explanation: LatentShiftExplanation, index: int = 0, step: int = 8, method: str = "tvl1", max_panels: int = 4
) -> Figure:
    """Optical flow between consecutive frames as arrows (paper Fig. 1B)."""
    frames = explanation.frames[index, :, 0].cpu().numpy()
    flow = optical_flow(frames, method=method)
    picks = np.unique(np.linspace(0, len(flow) - 1, min(len(flow), max_panels)).round().astype(int))
    h, w = frames.shape[-2:]
    rows, cols = np.mgrid[0:h:step, 0:w:step]
    fig, axes = plt.subplots(1, len(picks), figsize=(2.6 * len(picks), 2.8), squeeze=False)
    for ax, k in zip(axes[0], picks, strict=True):
        v, u = flow[k, 0, ::step, ::step], flow[k, 1, ::step, ::step]
        ax.imshow(frames[k], cmap="gray", vmin=-1024, vmax=1024)
        ax.quiver(cols, rows, u, v, np.hypot(u, v), cmap="autumn", angles="xy", scale_units="xy", scale=0.25)
        ax.set_title(f"flow {k}->{k + 1}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
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
