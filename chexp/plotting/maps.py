"""Attribution maps drawn over their images: one grid plotter for both papers' figures.

==============================  ==================================================================
:class:`MapStyle`               how a map is coloured over its image, and how the grid is labelled
:data:`GIFSPLANATION`           the Gifsplanation figures' look (jet, top pixels, yellow outlines)
:data:`CHEXPLAIN`               the CheXplain-IBA figures' look (inferno, signed maps in bwr, cyan)
:func:`map_grid`                the image then one map per column, a row per example
:func:`map_grid_figures`        one single-row :func:`map_grid` per example, for a slider
==============================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["CHEXPLAIN", "GIFSPLANATION", "MapStyle", "map_grid", "map_grid_figures"]

Array = torch.Tensor | np.ndarray


def _planes(x: Array, n: int) -> np.ndarray:
    """``(N, 1, H, W)`` or ``(N, H, W)`` (tensor or array) as float64 ``(n, H, W)``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(n, *x.shape[-2:])


@dataclass(frozen=True)
class MapStyle:
    """How a map is drawn over its grayscale image (in [-1024, 1024]) and how a grid is labelled.

    Attributes:
        cmap: colour map of maps >= 0, from 0 to the map's maximum.
        alpha: opacity of that colour map.
        floor: values up to ``floor`` times the map's maximum stay transparent (the anatomy
            shows through); 0 hides only the zeros.
        signed_cmap: colour map of maps with negative values, symmetric about 0 and drawn whole;
            ``None`` draws them like the others (negative values transparent).
        signed_alpha: opacity of ``signed_cmap``.
        interpolation: ``imshow`` interpolation of the image and the map (``None``: matplotlib's).
        outline: colour of the ground-truth mask contours.
        outline_width: their line width.
        panel: side of one panel in inches.
        header: inches added to the figure's height for the column titles.
        row_titles_left: row titles as the image's y label (default ``#i``) under an ``input``
            column title; otherwise as the image's title (default ``image``).
    """

    cmap: str
    alpha: float
    floor: float
    signed_cmap: str | None
    signed_alpha: float
    interpolation: str | None
    outline: str
    outline_width: float
    panel: float
    header: float
    row_titles_left: bool

    def image(self, ax: Axes, image: np.ndarray) -> None:
        """The grayscale image ``(H, W)`` on ``ax``, without ticks."""
        ax.imshow(image, cmap="gray", vmin=-1024, vmax=1024, interpolation=self.interpolation)
        ax.set_xticks([])
        ax.set_yticks([])

    def draw(self, ax: Axes, image: np.ndarray, amap: np.ndarray, top_fraction: float | None = None,
             overlay: bool = True) -> None:
        """The map ``(H, W)`` over ``image`` ``(H, W)``, or alone (every value coloured) when not ``overlay``.

        ``top_fraction`` colours only that fraction of the map's highest pixels (e.g. 0.05 for
        the top 5 %).
        """
        m = np.asarray(amap, dtype=np.float64)
        if overlay:
            self.image(ax, image)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        if self.signed_cmap is not None and m.min() < 0:
            lim = max(abs(m.min()), abs(m.max()), 1e-12)
            ax.imshow(m, cmap=self.signed_cmap, vmin=-lim, vmax=lim, alpha=self.signed_alpha,
                      interpolation=self.interpolation)
            return
        if top_fraction is not None:
            m = np.where(m >= np.quantile(m, 1.0 - top_fraction), m, np.nan)
        hi = float(np.nanmax(m)) if np.isfinite(m).any() else 1.0
        hi = hi if hi > 0 else 1.0
        if overlay:
            m = np.where(m > self.floor * hi, m, np.nan)  # NaN is transparent
        ax.imshow(m, cmap=self.cmap, vmin=0.0, vmax=hi, alpha=self.alpha, interpolation=self.interpolation)

    def contour(self, ax: Axes, mask: np.ndarray) -> None:
        """The outline of a boolean mask ``(H, W)``."""
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=self.outline, linewidths=self.outline_width)


GIFSPLANATION = MapStyle(cmap="jet", alpha=0.6, floor=0.02, signed_cmap=None, signed_alpha=0.6,
                         interpolation="nearest", outline="yellow", outline_width=0.8, panel=1.9,
                         header=0.3, row_titles_left=True)
"""Gifsplanation's figures: maps in jet under 2 % of their maximum transparent, yellow outlines."""

CHEXPLAIN = MapStyle(cmap="inferno", alpha=0.8, floor=0.0, signed_cmap="bwr", signed_alpha=0.75,
                     interpolation=None, outline="cyan", outline_width=0.7, panel=2.3,
                     header=0.0, row_titles_left=False)
"""CheXplain-IBA's figures: maps in inferno (zeros transparent), signed maps in bwr, cyan outlines."""


def map_grid(
    images: Array,
    maps: Mapping[str, Array],
    masks: Sequence[Array | None] | Array | None = None,
    row_titles: Sequence[str] | None = None,
    top_fraction: float | None = None,
    *,
    style: MapStyle,
    overlay: Mapping[str, bool] | None = None,
    panel: float | None = None,
    title: str | None = None,
) -> Figure:
    """The image then one map per column, a row per example.

    Args:
        images: ``(N, 1, H, W)`` or ``(N, H, W)`` in [-1024, 1024].
        maps: column title -> maps ``(N, 1, H, W)`` or ``(N, H, W)``; each map is scaled to its own
            maximum (see :class:`MapStyle`).
        masks: ground truth per row ``(H, W)`` (``None`` or empty: no outline), drawn on every panel.
        row_titles: one title per example (e.g. the prediction).
        top_fraction: colour only this fraction of each map's highest pixels (the Gifsplanation
            figures show the top 5 %: 0.05); ``None`` shows the whole map.
        style: colours and labels, e.g. :data:`GIFSPLANATION` or :data:`CHEXPLAIN`.
        overlay: column -> draw over the image (default True); False shows the map alone
            (e.g. a painted severity map).
        panel: side of one panel in inches (default: the style's).
        title: figure title.

    Returns:
        The matplotlib figure.
    """
    n = len(images)
    imgs = _planes(images, n)
    planes = {name: _planes(m, n) for name, m in maps.items()}
    panel = style.panel if panel is None else panel
    k = 1 + len(maps)
    height = panel * n + style.header + (0.4 if title else 0)
    fig, axes = plt.subplots(n, k, figsize=(panel * k, height), squeeze=False)
    # type grows with the panels: a page scales a wide grid down to its column's width
    label, heading = max(7.0, 4.5 * panel), max(8.0, 5.5 * panel)  # row labels, column titles
    for i in range(n):
        style.image(axes[i, 0], imgs[i])
        if style.row_titles_left:
            axes[i, 0].set_ylabel(row_titles[i] if row_titles else f"#{i}", fontsize=label)
        else:
            axes[i, 0].set_title(row_titles[i] if row_titles else "image", fontsize=7)
        for j, (name, m) in enumerate(planes.items(), start=1):
            style.draw(axes[i, j], imgs[i], m[i], top_fraction, (overlay or {}).get(name, True))
        if masks is not None and masks[i] is not None and np.asarray(masks[i]).any():
            for ax in axes[i]:
                style.contour(ax, np.asarray(masks[i]))
    if style.row_titles_left:
        axes[0, 0].set_title("input", fontsize=heading)
    for j, name in enumerate(maps, start=1):
        axes[0, j].set_title(name, fontsize=heading)
    if title:
        fig.suptitle(title, fontsize=heading + 1)
    fig.tight_layout()
    return fig


def map_grid_figures(
    images: Array,
    maps: Mapping[str, Array],
    masks: Sequence[Array | None] | Array | None = None,
    row_titles: Sequence[str] | None = None,
    top_fraction: float | None = None,
    **kwargs,
) -> list[Figure]:
    """One single-row :func:`map_grid` figure per example (for :func:`chexp.widgets.figure_slider`);
    ``kwargs`` go to :func:`map_grid`."""
    return [
        map_grid(images[i : i + 1], {name: m[i : i + 1] for name, m in maps.items()},
                 None if masks is None else [masks[i]], [row_titles[i]] if row_titles else None,
                 top_fraction, **kwargs)
        for i in range(len(images))
    ]
