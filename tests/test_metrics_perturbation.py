"""Insertion/deletion against a closed-form curve; sensitivity-N on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from chexp.baselines import GradientTimesInput
from chexp.errors import InputShapeError, InvalidParameterError, UnknownTargetError
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


def test_max_fraction_perturbs_the_most_important_share_only():
    a, b = 800.0, -200.0
    model, x, region = _setup(a)
    r = 32 / (S * S)
    dele = deletion(model, x, region, "Mass", pixels_per_step=4, baseline=b, progress=False, max_fraction=0.5)
    assert len(dele.fractions) == S * S // 8 + 1 and dele.fractions[-1] == 0.5
    np.testing.assert_allclose(dele.scores[0], a - np.minimum(dele.fractions * S * S, 32) * (a - b) / 32, rtol=1e-6)
    # the AUC is the mean score over the half perturbed (the released code's normalisation)
    assert dele.auc[0] == pytest.approx(((a + b) / 2 * r + b * (0.5 - r)) / 0.5, rel=1e-6)
    ins = insertion(model, x, region, "Mass", pixels_per_step=4, baseline=b, progress=False, max_fraction=0.5)
    assert ins.auc[0] == pytest.approx(((a + b) / 2 * r + a * (0.5 - r)) / 0.5, rel=1e-6)
    # 0.3 of 256 pixels: floor to 76, in 16 steps of 5 (the last of 1)
    part = deletion(model, x, region, "Mass", pixels_per_step=5, baseline=b, progress=False, max_fraction=0.3)
    assert part.fractions[-1] * S * S == pytest.approx(76) and len(part.fractions) == 17
    for bad in (0.0, 1.5, 0.001):
        with pytest.raises(InvalidParameterError):
            deletion(model, x, region, "Mass", progress=False, max_fraction=bad)


def test_tied_pixels_are_perturbed_in_a_seeded_random_order():
    a, b = 800.0, -200.0
    model, x, _ = _setup(a)
    xx = x.expand(200, -1, -1, -1)
    flat = torch.zeros_like(xx)  # every pixel ties
    dele = deletion(model, xx, flat, "Mass", pixels_per_step=64, baseline=b, progress=False)
    # in row-major order the first 64 pixels (rows 0-3) miss the region and the score stays at a;
    # in a random order the region loses a share c / 256 of its pixels on average
    expected = a - (a - b) * dele.fractions
    np.testing.assert_allclose(dele.scores.mean(0), expected, atol=25)
    assert dele.scores[:, 1].std() > 50  # each image has its own order
    again = deletion(model, xx[:5], flat[:5], "Mass", pixels_per_step=64, baseline=b, progress=False)
    np.testing.assert_array_equal(again.scores, dele.scores[:5])  # seeded: reproducible
    other = deletion(model, xx[:5], flat[:5], "Mass", pixels_per_step=64, baseline=b, progress=False,
                     generator=torch.Generator().manual_seed(3))
    assert not np.array_equal(other.scores, again.scores)
    # strict order is kept: a map that puts the region first still deletes it first
    late_ties = torch.zeros_like(x)
    late_ties[..., 4:8, 2:10] = 1.0
    first = deletion(model, x, late_ties, "Mass", pixels_per_step=32, baseline=b, progress=False)
    assert first.scores[0, 1] == pytest.approx(b, rel=1e-6)


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


def test_sensitivity_n_counts_undefined_correlations_as_zero():
    torch.manual_seed(0)
    model = Linear()
    x = (torch.rand(2, 1, S, S) * 2 - 1) * 1024
    maps = torch.zeros_like(x)
    maps[1, 0, 0, 0] = 1.0  # image 1: a single pixel, in some of the 64-pixel masks only
    res = sensitivity_n(model, x, maps, "Mass", ns=[64], n_masks=30, progress=False)
    assert res.correlation[0, 0] == 0.0 and np.isfinite(res.correlation).all()  # released: NaN -> 0
    raw = sensitivity_n(model, x, maps, "Mass", ns=[64], n_masks=30, progress=False, nan_as_zero=False)
    assert np.isnan(raw.correlation[0, 0]) and raw.correlation[1, 0] == res.correlation[1, 0] != 0


def test_default_sensitivity_ns_are_the_released_sizes_scaled_to_the_image():
    # 224 x 224, 50 points: the released list, int(logspace(0, 4.7, 50)) with its repeats
    ns = default_sensitivity_ns(224 * 224)
    assert list(ns) == [int(n) for n in np.logspace(0, 4.7, num=50)]
    assert list(ns[:8]) == [1, 1, 1, 1, 2, 3, 3, 4] and ns[-1] == 50118
    # 128 x 128: every one of the points is used, the largest the same share of the pixels
    for points in (4, 15, 50):
        small = default_sensitivity_ns(128 * 128, points=points)
        assert len(small) == points and small[0] == 1 and np.all(np.diff(small) >= 0)
        assert small[-1] == int(50118.72336272725 * 128**2 / 224**2) == 16365
    assert list(default_sensitivity_ns(128 * 128, points=4)) == [1, 25, 644, 16365]
    assert len(np.unique(default_sensitivity_ns(128 * 128, points=15))) == 14  # 1 twice, as released
    assert list(default_sensitivity_ns(1000, points=3, max_exponent=2)) == [1, 10, 100]


class _StandInSetup:
    """What :func:`perturbation_study` uses of a setup: a classifier, a device, maps."""

    def __init__(self) -> None:
        self.classifier = RegionMean()
        self.device = torch.device("cpu")

    def explain(self, images: torch.Tensor, target: str, methods: object) -> dict[str, torch.Tensor]:
        return {"Gradients": self.classifier.region.expand_as(images).clone()}


def test_perturbation_study_leaves_out_low_scores_and_stops_at_max_fraction():
    from chexp.experiments.perturbation import perturbation_study
    from chexp.profiles import SampleSet

    x = torch.full((3, 1, S, S), -300.0)
    x[:, :, 4:8, 2:10] = torch.tensor([800.0, 100.0, 500.0]).view(3, 1, 1, 1)  # scores 800, 100, 500
    samples = {"Mass": SampleSet(x, np.ones((3, 1), np.float32), ("Mass",))}
    setup = _StandInSetup()
    study = perturbation_study(setup, samples, ["Gradients"], curve_points=8, progress=False,  # type: ignore[arg-type]
                               max_fraction=0.5, min_score=400.0)
    assert study.left_out == {"Mass": 1} and study.tasks == ["Mass", "Mass"]
    dele = study.deletion["Gradients"]
    assert dele.fractions[-1] == 0.5 and len(dele.fractions) == 9  # 128 pixels in 8 steps of 16
    np.testing.assert_allclose(dele.scores[:, 0], [800.0, 500.0])
    assert study.table()["n"].tolist() == [2]
    every = perturbation_study(setup, samples, ["Gradients"], curve_points=8, progress=False)  # type: ignore[arg-type]
    assert every.left_out == {"Mass": 0} and len(every.tasks) == 3 and every.deletion["Gradients"].fractions[-1] == 1
    with pytest.raises(InvalidParameterError, match="leaves out every image"):
        perturbation_study(setup, samples, ["Gradients"], curve_points=8, progress=False,  # type: ignore[arg-type]
                           min_score=1000.0)
