"""Grid figures of phantoms with their finding masks outlined."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..phantoms import FINDINGS, PhantomSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Contour colour of each finding (matplotlib colour names), in FINDINGS order.
FINDING_COLORS: dict[str, str] = {
    "Cardiomegaly": "tab:red",
    "Effusion": "tab:cyan",
    "Mass": "yellow",
    "Pneumothorax": "lime",
    "Support Devices": "magenta",
}


def plot_phantom_grid(
    ps: PhantomSet,
    n: int = 16,
    ax_or_path: str | Path | Figure | None = None,
    *,
    cols: int | None = None,
    contours: bool = True,
) -> Figure:
    """Show the first ``n`` phantoms of ``ps`` in a grid, each finding mask outlined in its colour.

    Args:
        ps: a :class:`~chexp.phantoms.PhantomSet`.
        n: number of samples (the first n).
        ax_or_path: ``None`` (a new pyplot figure), a path (the figure is saved there, in the
            format its suffix names; pyplot and its backend are not used) or a matplotlib Figure
            to draw into.
        cols: grid columns (default ``ceil(sqrt(n))``).
        contours: outline the masks (and list the findings in each title).

    Returns:
        The matplotlib Figure.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    n = min(n, len(ps))
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    figsize = (2.6 * cols, 2.8 * rows + 0.4)
    if isinstance(ax_or_path, (str, Path)):
        fig = Figure(figsize=figsize)
    elif ax_or_path is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize)
    else:
        fig = ax_or_path
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(ps.images[i, 0], cmap="gray", vmin=-1024, vmax=1024, interpolation="nearest")
        present = [FINDINGS[k] for k in np.flatnonzero(ps.labels[i] > 0.5)]
        if contours:
            for k, name in enumerate(FINDINGS):
                if ps.masks[i, k].any():
                    ax.contour(ps.masks[i, k].astype(float), levels=[0.5], colors=FINDING_COLORS[name], linewidths=0.8)
        short = ", ".join("".join(w[0] for w in f.split()) if len(f) > 12 else f[:4] for f in present)
        ax.set_title(f"#{i}: {short or 'normal'}", fontsize=8)
    if contours:
        handles = [Line2D([], [], color=c, label=f) for f, c in FINDING_COLORS.items()]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    if isinstance(ax_or_path, (str, Path)):
        fig.savefig(ax_or_path, dpi=110)
    return fig
