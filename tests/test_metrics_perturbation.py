"""Insertion/deletion against a closed-form curve; sensitivity-N on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from chexp.baselines import GradientTimesInput
from chexp.errors import InputShapeError, UnknownTargetError
from chexp.metrics.perturbation import (
    GaussianBlur,
    default_sensitivity_ns,
    deletion,
    insertion,
    perturbation_curves,
    sensitivity_n,
)
from chexp.models.base import Classifier

S = 16


class RegionMean(Classifier):
    """score = mean of the image over a fixed region R (rows 4-7, columns 2-9: 32 pixels)."""

    def __init__(self) -> None:
        super().__init__(("Mass",), output="score")
        region = torch.zeros(1, 1, S, S)
        region[..., 4:8, 2:10] = 1
        self.register_buffer("region", region)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x * self.region).sum((1, 2, 3)) / self.region.sum())[:, None]


def _setup(a: float = 800.0):
    model = RegionMean()
    x = (torch.rand(1, 1, S, S) * 2 - 1) * 1024
    x[..., 4:8, 2:10] = a
    return model, x, model.region.clone()


def test_deletion_and_insertion_closed_form():
    a, b = 800.0, -200.0
    model, x, region = _setup(a)
    r = 32 / (S * S)
    dele = deletion(model, x, region, "Mass", pixels_per_step=4, baseline=b, progress=False)
    assert dele.fractions[0] == 0 and dele.fractions[-1] == 1 and len(dele.fractions) == S * S // 4 + 1
    counts = dele.fractions * S * S
    expected = a - np.minimum(counts, 32) * (a - b) / 32
    np.testing.assert_allclose(dele.scores[0], expected, rtol=1e-6)
    assert dele.auc[0] == pytest.approx((a + b) / 2 * r + b * (1 - r), rel=1e-6)
    ins = insertion(model, x, region, "Mass", pixels_per_step=4, baseline=b, progress=False)
    assert ins.auc[0] == pytest.approx((a + b) / 2 * r + a * (1 - r), rel=1e-6)
    # a map that puts R last: deletion stays at a until the last 32 pixels
    late = perturbation_curves(model, x, 1 - region, "Mass", pixels_per_step=4, baseline=b, progress=False)
    assert late.auc[0] == pytest.approx(a * (1 - r) + (a + b) / 2 * r, rel=1e-6)


def test_curves_do_not_depend_on_batching_and_partial_last_step():
    model, x, region = _setup()
    saliency = torch.rand(2, 1, S, S)
    xx = torch.cat([x, -x])
    one = deletion(model, xx, saliency, 0, pixels_per_step=25, batch_size=3, progress=False)
    two = deletion(model, xx, saliency, 0, pixels_per_step=25, batch_size=64, progress=False)
    np.testing.assert_allclose(one.scores, two.scores)
    assert len(one.fractions) == -(-S * S // 25) + 1 and one.fractions[-1] == 1.0  # 256 = 10*25 + 6
    with pytest.raises(UnknownTargetError):
        deletion(model, x, region, "Nope", progress=False)
    with pytest.raises(InputShapeError):
        deletion(model, x, region[..., :8], 0, progress=False)


def test_default_blur_baseline():
    blur = GaussianBlur()
    assert (blur.sigma, blur.kernel_size) == (10.0, 19)
    const = torch.full((1, 1, S, S), 300.0)
    torch.testing.assert_close(blur(const), const)
    x = (torch.rand(1, 1, 32, 32) * 2 - 1) * 1024
    assert float(blur(x).std()) < 0.5 * float(x.std())


class Linear(Classifier):
    def __init__(self) -> None:
        super().__init__(("Mass",), output="logit")
        self.fc = nn.Linear(S * S, 1, bias=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_sensitivity_n_is_one_for_gradient_times_input_on_linear_model():
    torch.manual_seed(0)
    model = Linear()
    x = (torch.rand(2, 1, S, S) * 2 - 1) * 1024
    maps = GradientTimesInput(model).attribute(x, "Mass")
    res = sensitivity_n(model, x, maps, "Mass", ns=[1, 4, 16, 64, 200], n_masks=30, progress=False)
    assert res.correlation.shape == (2, 5)
    np.testing.assert_allclose(res.correlation, 1.0, atol=1e-6)
    np.testing.assert_allclose(res.score_drop, res.attribution_sum, rtol=1e-4, atol=1e-2)
    # a map unrelated to the model is not correlated
    noise = sensitivity_n(model, x, torch.rand_like(x), "Mass", ns=[64], n_masks=30, progress=False)
    assert np.all(np.abs(noise.correlation) < 0.6)
    ns = default_sensitivity_ns(224 * 224)
    assert ns[0] == 1 and ns[-1] == round(10**4.7) and np.all(np.diff(ns) > 0)
