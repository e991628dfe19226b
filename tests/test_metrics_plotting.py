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
    r = RandomizationResult(["original", "fc"], np.ones((2, 3)), np.array([[1.0] * 3, [0.2] * 3]), np.ones((2, 3)), None)
    ax = plot_randomization({"grad": r})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.2])
    ratings = pd.DataFrame({"target": ["A"] * 4, "label": [1, 1, 0, 0],
                            "method": ["traditional", "latentshift"] * 2, "confidence": [2, 4, 3, 5]})
    ax = plot_reader_study(ratings)
    assert sorted(p.get_height() for p in ax.patches) == [2, 3, 4, 5]
