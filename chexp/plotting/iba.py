"""Figure comparing the IBA family on one image: IBA, Inverse IBA and Multi-layer IBA."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def _array(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    while x.ndim > 2:
        x = x[0]
    return x


def plot_iba_family(
    image: torch.Tensor | np.ndarray,
    maps: Mapping[str, torch.Tensor | np.ndarray],
    mask: torch.Tensor | np.ndarray | None = None,
    title: str | None = None,
    units: Mapping[str, str] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """The image, then one panel per map (overlaid in colour, with a colour bar).

    Args:
        image: one image ``(1, 1, H, W)``, ``(1, H, W)`` or ``(H, W)`` in [-1024, 1024].
        maps: panel title -> map of the same size (e.g. ``{"IBA": ..., "Inverse IBA": ...,
            "Multi-layer IBA": ...}``).
        mask: optional ground-truth mask, drawn as a contour on every panel.
        title: figure title.
        units: panel title -> colour-bar label (default ``"bits / pixel"``).
        path: save the figure there (PNG, 150 dpi) when given.

    Returns:
        The matplotlib figure.
    """
    img = _array(image)
    outline = _array(mask) > 0.5 if mask is not None else None
    n = 1 + len(maps)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.5), squeeze=False)
    axes = axes[0]
    axes[0].imshow(img, cmap="gray", vmin=-1024, vmax=1024)
    axes[0].set_title("image")
    for ax, (name, m) in zip(axes[1:], maps.items()):
        arr = _array(m)
        ax.imshow(img, cmap="gray", vmin=-1024, vmax=1024)
        peak = max(float(arr.max()), 1e-12)
        # values under 2% of the peak stay transparent so that the anatomy remains visible
        shown = ax.imshow(np.ma.masked_less_equal(arr, 0.02 * peak), cmap="inferno", alpha=0.7,
                          vmin=0, vmax=peak)
        label = (units or {}).get(name, "bits / pixel")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label=label)
        ax.set_title(name)
    for ax in axes:
        if outline is not None:
            ax.contour(outline, levels=[0.5], colors="cyan", linewidths=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    return fig
