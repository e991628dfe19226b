"""Map grids stay legible when a page scales them down: their type grows with the panels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from chexp.plotting.maps import GIFSPLANATION, map_grid


def test_map_grid_titles_grow_with_the_panels():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1024, 1024, (2, 16, 16))
    maps = {name: rng.uniform(0, 1, (2, 16, 16)) for name in ("grad", "guided", "latentshift-max")}
    for panel, heading, label in ((1.9, 10.45, 8.55), (3.0, 16.5, 13.5), (1.0, 8.0, 7.0)):
        fig = map_grid(images, maps, row_titles=["a p=1.00", "b p=0.90"], style=GIFSPLANATION, panel=panel)
        axes = np.array(fig.axes).reshape(2, 4)
        np.testing.assert_allclose([ax.title.get_fontsize() for ax in axes[0]], heading)
        np.testing.assert_allclose([ax.yaxis.label.get_fontsize() for ax in axes[:, 0]], label)
        plt.close(fig)
