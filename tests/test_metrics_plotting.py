"""The metric figures draw what they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from chexp.metrics.perturbation import PerturbationCurves
from chexp.metrics.randomization import RandomizationResult
from chexp.plotting.metrics import plot_perturbation_curves, plot_randomization, plot_reader_study


def test_plots_draw_their_data():
    f = np.linspace(0, 1, 5)
    c = PerturbationCurves(f, np.stack([1 - f, 1 - f]), np.array([0.5, 0.5]), "deletion")
    ax = plot_perturbation_curves({"grad": c})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 1 - f)
    assert "0.500" in ax.get_legend().get_texts()[0].get_text()
    r = RandomizationResult(
        ["original", "fc"], np.ones((2, 3)), np.array([[1.0] * 3, [0.2] * 3]), np.ones((2, 3)), None
    )
    ax = plot_randomization({"grad": r})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.2])
    ratings = pd.DataFrame({"target": ["A"] * 4, "label": [1, 1, 0, 0],
                            "method": ["traditional", "latentshift"] * 2, "confidence": [2, 4, 3, 5]})
    ax = plot_reader_study(ratings)
    assert sorted(p.get_height() for p in ax.patches) == [2, 3, 4, 5]


def test_map_grid_draws_each_style():
    import matplotlib.pyplot as plt
    import torch

    from chexp.plotting.maps import CHEXPLAIN, GIFSPLANATION, map_grid, map_grid_figures

    images = np.zeros((2, 8, 8))
    amap = np.arange(64.0).reshape(8, 8)
    maps = {"a": np.stack([amap, amap]), "signed": np.stack([amap - 32, amap - 32])}
    masks = [np.eye(8, dtype=bool), None]
    fig = map_grid(images, maps, masks, ["r0", "r1"], top_fraction=0.25, style=GIFSPLANATION)
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["input", "a", "signed"]
    assert axes[1, 0].get_ylabel() == "r1"
    shown = axes[0, 1].images[1].get_array()  # over the image: only the top quarter is coloured
    assert int((~np.ma.getmaskarray(shown)).sum()) == 16 and axes[0, 1].images[1].get_cmap().name == "jet"
    assert len(axes[0, 2].images[1].get_array().compressed()) < 64  # negative values transparent
    assert len(axes[0, 1].collections) == 1 and len(axes[1, 1].collections) == 0  # outline of row 0 only
    plt.close(fig)
    t = {name: torch.from_numpy(m[:, None]) for name, m in maps.items()}
    fig = map_grid(torch.from_numpy(images[:, None]), t, overlay={"a": False}, style=CHEXPLAIN, title="T")
    axes = np.array(fig.axes).reshape(2, 3)
    assert axes[0, 0].get_title() == "image" and fig._suptitle.get_text() == "T"
    assert len(axes[0, 1].images) == 1 and axes[0, 1].images[0].get_cmap().name == "inferno"  # alone
    assert axes[0, 2].images[1].get_cmap().name == "bwr" and axes[0, 2].images[1].get_clim() == (-32.0, 32.0)
    plt.close(fig)
    figs = map_grid_figures(images, maps, np.stack([masks[0], masks[0]]), ["r0", "r1"], style=GIFSPLANATION)
    assert len(figs) == 2 and all(len(f.axes) == 3 for f in figs)
    plt.close("all")
