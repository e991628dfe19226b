"""The paper rule on prediction curves that turn before reaching the 30 % / 5 % level (issue 12,
item 3): the bound falls back to the evaluated lambda with the lowest (lower side) or highest
(upper side) prediction, flagged ``converged=False`` per image and side; never a far lambda whose
frame moves the prediction the wrong way."""

from __future__ import annotations

import math

import pytest
import torch

from chexp.latentshift import LatentShift, PaperSearch
from chexp.models.base import Autoencoder, Classifier

H = 4


class MeanAE(Autoencoder):
    """A one-number latent: D(z) is a flat image of value 1024 * tanh(z)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def encode(self, x):
        return torch.atanh((x.mean((1, 2, 3)) / 1024).clamp(-0.999, 0.999)).unsqueeze(1)

    def decode(self, z):
        return (1024 * torch.tanh(z + self.dummy)).view(-1, 1, 1, 1).expand(-1, 1, H, H)


class QuadraticClassifier(Classifier):
    """Probability sigmoid(a + b * (m - c)^2) of the image mean m in [-1, 1]: with b > 0 the curve
    has a valley at m = c, with b < 0 a peak."""

    def __init__(self, a: float, b: float, c: float) -> None:
        super().__init__(["finding"], output="probability")
        self.a, self.b, self.c = a, b, c
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def logits(self, x):
        m = x.mean((1, 2, 3)) / 1024
        return (self.a + self.b * (m - self.c) ** 2 + self.dummy).unsqueeze(1)


def _flat(value: float) -> torch.Tensor:
    return torch.full((1, 1, H, H), value)


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_lower_side_that_turns_falls_back_to_the_lowest_prediction():
    # p0 = 0.965 at m = 0.5; the valley at m = 0.2 has p = sigmoid(2.5) = 0.924, above the 30 %
    # level (0.676); beyond it the prediction rises to 1 (the audit's p0 0.965 -> 1.000 case)
    b = (math.log(0.965 / 0.035) - 2.5) / 0.09
    clf, ae = QuadraticClassifier(2.5, b, 0.2), MeanAE()
    expl = LatentShift(clf, ae, search=PaperSearch()).explain(_flat(512.0), "finding")
    p0, at_lower = expl.initial_prediction[0].item(), expl.predictions[0, 0].item()
    assert p0 == pytest.approx(0.965, abs=1e-4)
    # the counterfactual lowers the prediction, close to the valley's minimum
    assert at_lower < p0 - 0.8 * (p0 - _sigmoid(2.5)), (at_lower, expl.bounds)
    # the valley of m(lambda) = tanh(atanh(0.5) + lambda * dz) at m = 0.2
    dz = expl.gradient_norm[0].item()
    valley = (math.atanh(0.2) - math.atanh(0.5)) / dz
    assert expl.bounds[0, 0].item() == pytest.approx(valley, rel=0.25)
    # flagged per side: the lower side did not reach its level, the upper side (monotone) did
    assert expl.converged[0].tolist() == [False, True]
    assert expl.at_limit[0].tolist() == [False, False]
    assert expl.search_result.lower_converged == [False]
    assert expl.search_result.converged == [False]
    assert expl.summary()["converged"] == [[False, True]]


def test_upper_side_that_turns_falls_back_to_the_highest_prediction():
    # p0 = 0.5 at m = 0.1; the peak at m = 0.3 has p = sigmoid(0.04) = 0.510 < 0.525 (+5 %)
    clf, ae = QuadraticClassifier(0.04, -1.0, 0.3), MeanAE()
    expl = LatentShift(clf, ae, search=PaperSearch()).explain(_flat(102.4), "finding")
    p0, at_upper = expl.initial_prediction[0].item(), expl.predictions[0, -1].item()
    assert p0 == pytest.approx(0.5, abs=1e-4)
    assert at_upper > p0 + 0.8 * (_sigmoid(0.04) - p0), (at_upper, expl.bounds)
    assert expl.converged[0].tolist() == [True, False]
    assert not bool(expl.at_limit[0, 1])
    # the lower side is monotone: its 30 % fall is reached as before
    assert expl.predictions[0, 0].item() == pytest.approx(0.7 * p0, abs=0.1 * 0.3 * p0)


def test_monotone_curve_still_converges_and_saturated_limit_stays_flagged():
    clf, ae = QuadraticClassifier(0.0, 3.0, -1.0), MeanAE()  # increasing on m > -1
    expl = LatentShift(clf, ae).explain(_flat(0.0), "finding")
    assert expl.converged.all()
    # an unreachable level walked to the limit on a monotone curve is the limit, not converged
    rule = PaperSearch(rise=0.9, limit=5.0, halfway_if_out_of_range=False)
    expl = LatentShift(clf, ae, search=rule).explain(_flat(0.0), "finding")
    assert expl.bounds[0, 1].item() == 5.0
    assert expl.at_limit[0].tolist() == [False, True] and expl.converged[0].tolist() == [True, False]


def test_every_caption_of_a_bound_frame_says_not_converged():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from chexp.experiments.lambda_search import search_comparison, search_summary
    from chexp.latentshift import slider_data
    from chexp.plotting.gifsplanation import plot_search_rules, side_by_side_frames
    from chexp.plotting.latentshift import plot_frames, plot_prediction_curve

    b = (math.log(0.965 / 0.035) - 2.5) / 0.09
    clf, ae = QuadraticClassifier(2.5, b, 0.2), MeanAE()
    expl = LatentShift(clf, ae, n_frames=4).explain(_flat(512.0), "finding")
    flags = [expl.frame_flag(0, t) for t in range(4)]
    assert flags == [" (not converged)", "", "", ""]
    assert slider_data(expl)[1][0].endswith("(not converged)") and not slider_data(expl)[1][-1].endswith(")")
    assert side_by_side_frames([expl], ["ae"])[1][0].endswith("(not converged)")
    assert "not converged" in plot_frames(expl).axes[0].get_title()
    labels = plot_prediction_curve(expl).get_legend_handles_labels()[1]
    assert "lower bound, not converged" in labels and "upper bound, not converged" not in labels
    table, _ = search_comparison(clf, ae, _flat(512.0), "finding", ["paper", "appendix-c"], n_frames=4,
                                 sequential=False)
    paper = table.set_index("rule").loc["paper"]
    assert not paper["lower_converged"] and paper["upper_converged"]
    assert search_summary(table)["converged"].to_dict() == {"paper": 0.0, "appendix-c": 1.0}
    ax = plot_search_rules(pd.Series([-1.0, 0.0]).to_numpy(), pd.Series([0.9, 0.96]).to_numpy(), table)
    assert any("not converged: lower" in t for t in ax.get_legend_handles_labels()[1])


def test_walk_agreement_stepped_rules_equal_the_walk_the_paper_rule_does_not():
    """Notebook 18's claims (issue 12, item 8): a stepped rule returns the released walk's bound;
    the paper rule's root finding does not (the walk in steps of 10 stops past the level)."""
    from chexp.experiments.lambda_search import search_comparison, walk_agreement

    clf, ae = QuadraticClassifier(0.0, 3.0, -1.0), MeanAE()  # increasing on m > -1
    x = torch.cat([_flat(0.0), _flat(300.0)])
    table, _ = search_comparison(clf, ae, x, "finding", ["paper", "appendix-c"], n_frames=4, sequential=True)
    agree = walk_agreement(table)
    assert agree.loc["appendix-c", "same_lower_as_walk"] == 1.0
    assert agree.loc["paper", "same_lower_as_walk"] == 0.0
    assert agree.loc["paper", "first_step"] == -10.0
    # image 0: the paper rule's bound (-2.06) lies inside the walk's first step, where the
    # prediction fell by 30 %; the walk stops at -10, where it has fallen by 48 %
    paper = table[table["rule"] == "paper"].set_index("image")
    assert -10.0 < paper.loc[0, "lower"] < -1.0 and paper.loc[0, "sequential_lower"] == -10.0
    assert paper.loc[0, "at_first_step"] == pytest.approx(0.5, abs=0.01)
    assert paper.loc[0, "at_lower"] == pytest.approx(0.7 * paper.loc[0, "initial"], abs=0.03 * paper.loc[0, "initial"])
    assert agree.loc["paper", "fall_at_first_step_pct"] == "-48 to -10"
