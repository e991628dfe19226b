"""The released code's variants next to the paper's (issue 12, item 9): the single-frame
``counterfactual`` map behind Table 1's latentshift-max, and the absolute reading of the paper's
30 % / 5 % rule (the released code's only upper rule is + 0.05)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chexp.latentshift import (
    MAP_METHODS,
    CounterfactualMap,
    LatentShift,
    MaxMap,
    PaperAbsoluteSearch,
    get_map,
    get_search,
)
from chexp.methods import build_method, get_method_spec
from test_latentshift import LinearAE, LinearClassifier, _images  # the same closed-form fakes


def _released_max(frames: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """gifsplanation 5e78981 ``attribution.py``: ``np.max(np.abs(xp[0][0] - dimgs[0][0]), 0)``
    with ``xp`` the reconstruction (1, 1, H, W) and ``dimgs`` the frames, each (1, 1, H, W)."""
    return np.max(np.abs(recon[0][0] - frames[0][0]), 0)


def test_counterfactual_map_is_the_released_max_map_of_one_frame():
    frames = torch.tensor([[[[1.0, 0.0], [0.0, -3.0]]], [[[0.0, 4.0], [0.0, 0.0]]], [[[0.0, 0.0], [2.0, 0.0]]]])
    frames = frames.unsqueeze(0)  # (1, 3, 1, 2, 2): lower bound first
    recon = torch.full((1, 1, 2, 2), 0.5)
    got = CounterfactualMap()(frames, recon)
    assert got[0].tolist() == [[0.5, 0.5], [0.5, 3.5]]
    released = _released_max([f[None].numpy() for f in frames[0]], recon.numpy())
    np.testing.assert_array_equal(got[0].numpy(), released)
    assert not torch.equal(got, MaxMap()(frames, recon))  # the sequence's max differs
    assert get_map("counterfactual").name == "counterfactual" and "counterfactual" in MAP_METHODS


def test_counterfactual_map_is_a_method_and_equals_the_lower_bound_frame():
    ae, clf = LinearAE(), LinearClassifier(n_targets=1)
    x = _images(2)
    spec = get_method_spec("latentshift-counterfactual")
    assert spec.settings == {"map_method": "counterfactual"} and spec.display == "Latent Shift (counterfactual)"
    maps = build_method("latentshift-counterfactual", clf, ae).attribute(x, "a")
    expl = LatentShift(clf, ae).explain(x, "a")
    want = (expl.frames[:, 0] - expl.reconstruction).abs()
    assert torch.allclose(maps, want)
    # on a linear model the frames move along one direction, so the counterfactual is
    # |lower| * |direction|, and the max over [lower, upper] is max(|lower|, upper) * |direction|
    lower, upper = expl.bounds[:, 0].abs(), expl.bounds[:, 1]
    ratio = torch.maximum(lower, upper) / lower
    max_map = build_method("latentshift-max", clf, ae).attribute(x, "a")
    assert torch.allclose(max_map, maps * ratio.view(-1, 1, 1, 1).float(), rtol=1e-3, atol=1e-3)


def test_absolute_paper_preset_in_closed_form():
    ae, clf = LinearAE(), LinearClassifier(n_targets=1)
    x = _images(3)
    rule = get_search("paper-absolute")
    assert isinstance(rule, PaperAbsoluteSearch) and rule.name == "paper-absolute"
    expl = LatentShift(clf, ae, search=rule).explain(x, "a")
    slope = expl.gradient_norm.pow(2)
    # a linear score: g(lambda) = g(0) + lambda |dz|^2, so the levels g(0) - 0.3 and g(0) + 0.05
    assert torch.allclose(expl.bounds[:, 0], -0.3 / slope, rtol=1e-3)
    assert torch.allclose(expl.bounds[:, 1], 0.05 / slope, rtol=1e-3)
    p0 = expl.initial_prediction
    assert torch.allclose(expl.predictions[:, 0].double(), p0 - 0.3, atol=1e-4)
    # the relative default differs wherever |g(0)| != 1
    rel = LatentShift(clf, ae).explain(x, "a")
    assert not torch.allclose(rel.bounds, expl.bounds, rtol=1e-2)
    assert rule.reference().lower.threshold(0.8) == pytest.approx(0.5)
