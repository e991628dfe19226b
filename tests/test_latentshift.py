"""Latent Shift: closed-form checks on tiny models (linear and one-dimensional), search rules
against the sequential reference, maps, outputs and input validation."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from chexp.errors import InputRangeError, InputShapeError, UnknownNameError, UnknownTargetError
from chexp.latentshift import (
    AppendixCSearch,
    FixedRange,
    Gifsplanation2021Search,
    GifsplanationCurrentSearch,
    LatentShift,
    LatentShiftPackageSearch,
    MaxMap,
    MeanMap,
    MinMaxMap,
    PaperSearch,
    SlidingIntervalMap,
    get_map,
    get_search,
    optical_flow,
    postprocess,
    save_animation,
    slider_data,
)
from chexp.latentshift.animation import animation_frames, mp4_available
from chexp.latentshift.reference import sequential_latent_shift
from chexp.models.base import Autoencoder, Classifier

H = 8


class LinearAE(Autoencoder):
    """D(z) = W z + b; E(x) = least-squares inverse. Frames are recon + lambda W W^T w exactly."""

    def __init__(self, k: int = 5) -> None:
        super().__init__(size_multiple=4)
        g = torch.Generator().manual_seed(1)
        self.W = torch.nn.Parameter(torch.randn(H * H, k, generator=g) * 50)
        self.b = torch.nn.Parameter(torch.randn(H * H, generator=g) * 10)
        self.encode_calls = 0

    def encode(self, x):
        self.encode_calls += 1
        return torch.linalg.lstsq(self.W, (x.flatten(1) - self.b).T).solution.T

    def decode(self, z):
        return (z @ self.W.T + self.b).view(-1, 1, H, H)


class LinearClassifier(Classifier):
    """Scores ``x w^T + c`` of targets "a", "b" (the first ``n_targets`` of them)."""

    def __init__(self, n_targets: int = 2) -> None:
        super().__init__(["a", "b"][:n_targets], output="score")
        g = torch.Generator().manual_seed(2)
        self.w = torch.nn.Parameter((torch.randn(2, H * H, generator=g) * 1e-3)[:n_targets])
        self.c = torch.nn.Parameter(torch.tensor([0.5, 0.2])[:n_targets])

    def logits(self, x):
        return x.flatten(1) @ self.w.T + self.c


class ScalarAE(Autoencoder):
    """A one-number latent: D(z) is a flat image of value 1024 * tanh(scale * z)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def encode(self, x):
        return torch.atanh((x.mean((1, 2, 3)) / 1024).clamp(-0.999, 0.999)).unsqueeze(1) / self.scale

    def decode(self, z):
        return (1024 * torch.tanh(z * self.scale)).view(-1, 1, 1, 1).expand(-1, 1, H, H)


class CurveClassifier(Classifier):
    """Probability sigmoid(a * (m - c)) (+ a wiggle) of the image mean m in [-1, 1]."""

    def __init__(self, a: float = 3.0, c: float = 0.0, wiggle: float = 0.0) -> None:
        super().__init__(["finding"], output="probability")
        self.a, self.c, self.wiggle = a, c, wiggle
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def logits(self, x):
        m = x.mean((1, 2, 3)) / 1024
        return (self.a * (m - self.c) + self.wiggle * torch.sin(40 * m) + self.dummy).unsqueeze(1)


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, H, H, generator=g) * 1000 - 500


def _flat(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, H, H).clone()


# -- closed form ------------------------------------------------------------------------------
def test_linear_frames_gradient_and_paper_bounds_in_closed_form():
    ae, clf = LinearAE(), LinearClassifier()
    x = _images(3)
    expl = LatentShift(clf, ae, n_frames=7).explain(x, target="a")
    w = clf.w[0].detach().double()
    W = ae.W.detach().double()
    dz = W.T @ w  # d f(D(z)) / dz
    slope = float(dz @ dz)
    direction = (W @ dz).float().view(1, H, H)
    recon = expl.reconstruction
    p0 = expl.initial_prediction
    assert torch.allclose(expl.gradient_norm, torch.full((3,), math.sqrt(slope), dtype=torch.float64), rtol=1e-5)
    for b in range(3):
        for t in range(7):
            lam = float(expl.lambdas[b, t])
            assert torch.allclose(expl.frames[b, t], recon[b] + lam * direction, atol=2e-2)
            assert expl.predictions[b, t].item() == pytest.approx(p0[b].item() + lam * slope, abs=1e-4)
        lower, upper = expl.bounds[b].tolist()
        assert lower == pytest.approx(-0.3 * abs(p0[b].item()) / slope, rel=1e-3)
        assert upper == pytest.approx(0.05 * abs(p0[b].item()) / slope, rel=1e-3)
        assert expl.predictions[b, 0].item() == pytest.approx(p0[b].item() - 0.3 * abs(p0[b].item()), abs=1e-4)
    # a linear curve: one Newton step per side; both bound frames reused as output frames
    assert expl.search_evaluations == 3 * 2
    assert expl.frame_evaluations == 3 * (7 - 2)
    assert expl.at_limit.sum() == 0


def test_batch_equals_one_at_a_time():
    ae, clf = LinearAE(), LinearClassifier()
    x = _images(4, seed=3)
    ls = LatentShift(clf, ae)
    batch = ls.explain(x, target="b")
    for b in range(4):
        single = ls.explain(x[b : b + 1], target="b")
        assert torch.allclose(single.bounds, batch.bounds[b : b + 1], rtol=1e-5)
        assert torch.allclose(single.frames[0], batch.frames[b], atol=1e-2)


def test_models_left_in_their_mode():
    ae, clf = LinearAE(), LinearClassifier()
    ae.train()
    clf.eval()
    LatentShift(clf, ae).explain(_images(1), target="a")
    assert ae.training and not clf.training


# -- search rules -----------------------------------------------------------------------------
def _curve(a=3.0, c=0.0, wiggle=0.0, scale=1.0):
    return ScalarAE(scale), CurveClassifier(a, c, wiggle)


def test_paper_search_on_sigmoid_curve_hits_targets_within_tolerance():
    ae, clf = _curve()
    x = _flat([300.0, 100.0, -200.0])
    expl = LatentShift(clf, ae, search=PaperSearch(rtol=0.05)).explain(x, "finding")
    p0 = expl.initial_prediction
    low, high = expl.predictions[:, 0], expl.predictions[:, -1]
    assert torch.all((low - 0.7 * p0).abs() <= 0.05 * 0.3 * p0 + 1e-9)
    assert torch.all((high - 1.05 * p0).abs() <= 0.05 * 0.05 * p0 + 1e-9)
    assert expl.search_evaluations <= 3 * 2 * 4  # a few Newton/secant steps per side
    assert torch.all(expl.predictions[:, 1:] >= expl.predictions[:, :-1])  # monotone in lambda


def test_unreachable_upper_target_goes_to_limit_in_one_evaluation():
    ae, clf = _curve(a=8.0)
    x = _flat([900.0])  # p0 ~ 0.999: +5 % is above 1
    search = PaperSearch(limit=50.0, halfway_if_out_of_range=False)
    expl = LatentShift(clf, ae, search=search).explain(x, "finding")
    assert expl.bounds[0, 1].item() == 50.0 and bool(expl.at_limit[0, 1])


def test_saturated_upper_target_aims_halfway_to_one():
    ae, clf = _curve(a=5.0)
    x = _flat([700.0])  # p0 > 0.952: +5 % is above 1, so the bound aims at (p0 + 1) / 2
    expl = LatentShift(clf, ae, search=PaperSearch(rtol=0.05)).explain(x, "finding")
    p0, high = expl.initial_prediction[0].item(), expl.predictions[0, -1].item()
    assert p0 > 0.952
    want = 0.5 * (p0 + 1.0)
    assert abs(high - want) <= 0.05 * (want - p0) + 1e-9
    assert not bool(expl.at_limit[0, 1])


def test_sequential_paper_walk_also_aims_halfway_when_saturated():
    """The released-style walk of the paper rule stops at the same adapted level as the batched
    search (before, it walked to the limit: a 5 % rise of p0 > 0.952 never comes)."""
    ae, clf = _curve(a=5.0)
    x = _flat([700.0])
    rule = PaperSearch(step=0.25, limit=200.0)
    expl = LatentShift(clf, ae, search=rule).explain(x, "finding")
    assert expl.initial_prediction[0].item() > 0.952
    seq = sequential_latent_shift(clf, ae, x, "finding", rule)
    # the walk stops at the first step of 0.25 past the level the search solved for (within 10 %)
    assert 0.9 * expl.bounds[0, 1].item() <= seq.upper <= 1.1 * expl.bounds[0, 1].item() + 0.25, seq.upper
    # without a probability range (a score), the level stays +5 %; with it, halfway to 1
    assert rule.reference().upper.threshold(0.99) == pytest.approx(0.99 * 1.05)
    assert rule.reference(value_range=(0.0, 1.0)).upper.threshold(0.99) == pytest.approx(0.995)


STEPPED = [AppendixCSearch, Gifsplanation2021Search, GifsplanationCurrentSearch, LatentShiftPackageSearch]


@pytest.mark.parametrize("rule_cls", STEPPED)
def test_stepped_rules_match_the_sequential_reference(rule_cls):
    # a small latent scale: the bounds lie tens to hundreds of lambda units away from 0
    ae, clf = _curve(a=6.0, scale=0.03)
    x = _flat([600.0, 200.0, -100.0])
    fast = LatentShift(clf, ae, search=rule_cls()).explain(x, "finding")
    exhaustive = LatentShift(clf, ae, search=rule_cls(exhaustive=True)).explain(x, "finding")
    for b in range(3):
        seq = sequential_latent_shift(clf, ae, x[b : b + 1], "finding", rule_cls())
        assert fast.bounds[b].tolist() == [seq.lower, seq.upper]
        assert exhaustive.bounds[b].tolist() == [seq.lower, seq.upper]
        assert np.allclose(fast.predictions[b].numpy(), seq.predictions, atol=1e-5)
    # confirming the walk's first stop needs every grid point before it: the batched search
    # evaluates them in a few rounds, overshooting by a few points
    ref = rule_cls().reference()
    walk = sum(side.grid().index(bound) for b in range(3)
               for side, bound in zip((ref.lower, ref.upper), fast.bounds[b].tolist(), strict=True) if side is not None)
    assert walk <= fast.search_evaluations <= walk + 3 * 8
    assert fast.search_result.rounds <= 5


def test_exhaustive_equals_sequential_on_a_wiggly_curve():
    ae, clf = _curve(a=0.02, wiggle=0.01)
    x = _flat([500.0, 0.0])
    rule = Gifsplanation2021Search(exhaustive=True, chunk=8)
    expl = LatentShift(clf, ae, search=rule).explain(x, "finding")
    for b in range(2):
        seq = sequential_latent_shift(clf, ae, x[b : b + 1], "finding", rule)
        assert expl.bounds[b].tolist() == [seq.lower, seq.upper]


def test_appendix_c_bound_by_hand():
    """Step the closed-form curve by hand: p(lambda) = sigmoid(a tanh(z0 + lambda dz))."""
    a = 0.05
    ae, clf = _curve(a=a)
    x = _flat([700.0])
    z0 = math.atanh(700 / 1024)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    p = lambda z: sig(a * math.tanh(z))  # noqa: E731
    p0 = p(z0)
    dz = p0 * (1 - p0) * a * (1 - math.tanh(z0) ** 2)
    lam, expected = 0.0, None
    while True:
        cur = p(z0 + lam * dz)
        if cur < p0 - 0.5 or lam <= -1000 or (lam < 0 and cur > p(z0 + (lam + 10) * dz)):
            expected = lam
            break
        lam -= 10
    expl = LatentShift(clf, ae, search=AppendixCSearch()).explain(x, "finding")
    assert expl.bounds[0].tolist() == [expected, 0.0]


def test_extra_sigmoid_rules_report_raw_predictions():
    ae, clf = _curve(a=0.5)
    x = _flat([400.0])
    expl = LatentShift(clf, ae, search=GifsplanationCurrentSearch()).explain(x, "finding")
    assert expl.predictions[0, -1].item() == pytest.approx(expl.initial_prediction[0].item(), abs=1e-6)
    assert expl.predictions[0, -1].item() < 0.99  # the model's probability, not sigmoid(probability)


def test_fixed_range_and_registry():
    ae, clf = LinearAE(), LinearClassifier()
    expl = LatentShift(clf, ae, search=FixedRange(-3.0, 1.0), n_frames=5).explain(_images(2), "a")
    assert expl.search_evaluations == 0
    assert expl.lambdas[0].tolist() == [-3.0, -2.0, -1.0, 0.0, 1.0]
    assert expl.frame_evaluations == 2 * 4  # lambda = 0 is the reconstruction, already known
    assert isinstance(get_search("appendix-c"), AppendixCSearch)
    with pytest.raises(UnknownNameError, match="lambda search rule"):
        get_search("bogus")
    with pytest.raises(ValueError):
        FixedRange(1.0, -1.0)


# -- maps -------------------------------------------------------------------------------------
def test_maps_over_the_whole_sequence():
    recon = torch.zeros(1, 1, 2, 2)
    frames = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 4.0], [0.0, 0.0]]], [[[0.0, 0.0], [2.0, 0.0]]]])
    frames = frames.unsqueeze(0)  # (1, 3, 1, 2, 2)
    assert MaxMap()(frames, recon)[0].tolist() == [[1.0, 4.0], [2.0, 0.0]]
    assert torch.allclose(MeanMap()(frames, recon)[0], torch.tensor([[1 / 3, 4 / 3], [2 / 3, 0.0]]))
    assert MinMaxMap()(frames, recon)[0].tolist() == [[1.0, 0.0], [2.0, 0.0]]
    assert torch.allclose(SlidingIntervalMap()(frames, recon)[0], torch.tensor([[0.5, 4.0], [1.0, 0.0]]))
    # not the reference code's single-frame bug: max != mean
    assert not torch.allclose(MaxMap()(frames, recon), MeanMap()(frames, recon))
    with pytest.raises(UnknownNameError):
        get_map("median")


def test_postprocess_threshold_and_smoothing():
    maps = torch.arange(100, dtype=torch.float32).view(1, 10, 10)
    kept = postprocess(maps, percentile=95)
    assert int((kept > 0).sum()) == 5 and kept.max() == 99
    spike = torch.zeros(1, 11, 11)
    spike[0, 5, 5] = 1.0
    smooth = postprocess(spike, sigma=1.0)
    assert smooth[0, 5, 5] < 1.0 and smooth[0, 5, 6] > 0 and smooth.sum() == pytest.approx(1.0, abs=1e-3)


# -- outputs ----------------------------------------------------------------------------------
def test_gif_slider_and_plots(tmp_path):
    ae, clf = LinearAE(), LinearClassifier()
    expl = LatentShift(clf, ae, n_frames=6).explain(_images(2), "a")
    path = save_animation(expl, tmp_path / "a.gif", index=1, scale=4)
    frames = imageio.mimread(path)
    assert len(frames) == 2 * 6 - 2 and frames[0].shape[:2] == (4 * H, 8 * H)
    with pytest.raises(UnknownNameError):
        save_animation(expl, tmp_path / "a.avi")
    if mp4_available():
        assert save_animation(expl, tmp_path / "a.mp4").stat().st_size > 0
    arr, labels = slider_data(expl, 1)
    assert arr.dtype == np.uint8 and arr.shape == (6, H, H) and len(labels) == 6
    assert labels[0].startswith(f"lambda={expl.lambdas[1, 0].item():+.4g}")
    frames = animation_frames(expl, 0, beside_input=False, boomerang=False, show_prediction=False)
    assert len(frames) == 6 and frames[0].shape == (H, H, 3)
    from chexp.plotting.latentshift import plot_flow, plot_frames, plot_heatmap, plot_prediction_curve

    plot_prediction_curve(expl, 0)
    plot_frames(expl, 0)
    plot_heatmap(expl, 0)
    plot_flow(expl, 0, step=4, method="ilk")


def test_optical_flow_recovers_a_translation():
    yy, xx = np.mgrid[0:32, 0:32]
    blob = lambda cx: 2048 * np.exp(-((xx - cx) ** 2 + (yy - 16) ** 2) / 30.0) - 1024  # noqa: E731
    frames = np.stack([blob(14.0), blob(16.0)]).astype(np.float32)
    flow = optical_flow(frames)
    assert flow.shape == (1, 2, 32, 32)
    # skimage: frame0(x) ~ frame1(x + flow); the blob moved +2 columns
    assert np.median(flow[0, 1, 12:20, 12:20]) == pytest.approx(2.0, abs=0.4)
    assert abs(np.median(flow[0, 0, 12:20, 12:20])) < 0.3


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, target, error",
    [
        (lambda: _images(1) * 4, "a", InputRangeError),
        (lambda: _images(1) / 1000 + 0.5, "a", InputRangeError),  # looks like [0, 1]
        (lambda: torch.full((1, 1, H, H), float("nan")), "a", InputRangeError),
        (lambda: torch.zeros(1, 1, 6, 6), "a", InputShapeError),  # not a multiple of 4
        (lambda: torch.zeros(1, 3, H, H), "a", InputShapeError),
        (lambda: _images(1), "Cardiomegaly", UnknownTargetError),
        (lambda: _images(1), 7, UnknownTargetError),
    ],
)
def test_bad_input_fails_before_any_model_runs(make, target, error):
    ae, clf = LinearAE(), LinearClassifier()
    with pytest.raises(error):
        LatentShift(clf, ae).explain(make(), target)
    assert ae.encode_calls == 0


def test_bad_options():
    ae, clf = LinearAE(), LinearClassifier()
    with pytest.raises(ValueError, match="n_frames"):
        LatentShift(clf, ae, n_frames=1)
    with pytest.raises(UnknownNameError):
        LatentShift(clf, ae, map_method="nope")
    with pytest.raises(UnknownTargetError, match="Valid targets: a, b"):
        LatentShift(clf, ae).explain(_images(1), "c")
    assert ae.encode_calls == 0
