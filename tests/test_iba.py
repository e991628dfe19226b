"""IBA family: closed forms, estimator, hooks, the lean engine against the reference, bad input."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import pytest
import torch
from torch import nn

from chexp.errors import InputRangeError, NotFittedError, UnknownLayerError, UnknownTargetError
from chexp.iba import (
    IBA,
    BottleneckConfig,
    LossMismatchError,
    RegressionIBA,
    RegressionMSE,
    StatisticsMismatchError,
    TargetBCE,
    UnitStatistics,
    information,
    reference_attribute,
)
from chexp.iba.bottleneck import GaussianSmoothing, gaussian_kernel
from chexp.models.base import Classifier
from chexp.models.modules import resolve_layer

pytestmark = pytest.mark.filterwarnings("ignore:IBA statistics")

SIZE = 64  # input side; block1 -> 32, block2 -> 16
# regions on the 16 x 16 block2 map (rows, cols)
A = (slice(2, 6), slice(2, 6))
B = (slice(2, 6), slice(10, 14))
C = (slice(10, 14), slice(6, 10))


class Scale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 1024.0


class RegionModel(Classifier):
    """Outputs depend only on the mean block2 feature of a few regions: ``head(means (B, K))``."""

    def __init__(
        self,
        head: Callable[[torch.Tensor], torch.Tensor],
        regions: tuple[tuple[slice, slice], ...],
        targets: tuple[str, ...] = ("finding",),
        output: str = "logit",
    ) -> None:
        super().__init__(targets, output=output)  # type: ignore[arg-type]
        self.features = nn.Sequential(
            OrderedDict(scale=Scale(), block1=nn.AvgPool2d(2), block2=nn.AvgPool2d(2))
        )
        self.head_fn = head
        self.regions = regions
        self.dummy = nn.Parameter(torch.zeros(()))  # a parameter, to check freezing

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)[:, 0]
        means = torch.stack([f[:, r, c].mean(dim=(1, 2)) for r, c in self.regions], dim=1)
        return self.head_fn(means) + self.dummy


def random_images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, SIZE, SIZE, generator=g) * 2 - 1) * 1024


def paint(images: torch.Tensor, region: tuple[slice, slice], value: float) -> torch.Tensor:
    r, c = region
    rows = slice(r.start * 4, r.stop * 4)
    cols = slice(c.start * 4, c.stop * 4)
    out = images.clone()
    out[:, :, rows, cols] = value * 1024
    return out


def region_mass(maps: torch.Tensor, region: tuple[slice, slice]) -> torch.Tensor:
    r, c = region
    return maps[:, 0, r.start * 4 : r.stop * 4, c.start * 4 : c.stop * 4].mean(dim=(1, 2))


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return random_images(256, seed=1)


def single_region_model() -> RegionModel:
    return RegionModel(lambda m: 6.0 * m[:, :1] - 1.0, (A,))


# --- closed forms -------------------------------------------------------------------------------


def test_information_is_zero_without_signal() -> None:
    r = torch.randn(3, 4, 5, 5)
    assert torch.equal(information(r, torch.zeros_like(r)), torch.zeros_like(r))


def test_information_matches_gaussian_kl() -> None:
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 4, 4)
    mu = torch.randn(shape, generator=g, dtype=torch.float64)
    sigma = torch.rand(shape, generator=g, dtype=torch.float64) + 0.1
    R = mu + 2 * torch.randn(shape, generator=g, dtype=torch.float64)
    lam = torch.rand(shape, generator=g, dtype=torch.float64) * 0.98
    # Z = lam R + (1 - lam) eps, eps ~ N(mu, sigma): Z | R ~ N(lam R + (1 - lam) mu, (1 - lam) sigma)
    p = torch.distributions.Normal(lam * R + (1 - lam) * mu, (1 - lam) * sigma)
    q = torch.distributions.Normal(mu, sigma)
    expected = torch.distributions.kl_divergence(p, q)
    got = information((R - mu) / sigma, lam)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_gaussian_smoothing_kernel_and_constant() -> None:
    k = gaussian_kernel(1.0)
    assert k.shape == (5, 5) and abs(float(k.sum()) - 1) < 1e-6
    assert float(k[2, 2]) == float(k.max())
    x = torch.full((2, 3, 7, 7), 0.3)
    torch.testing.assert_close(GaussianSmoothing(1.0)(x), x)
    tiny = torch.rand(1, 2, 2, 2)  # smaller than the padding: replicate, still shape-preserving
    assert GaussianSmoothing(1.0)(tiny).shape == tiny.shape


# --- estimator ----------------------------------------------------------------------------------


def test_streaming_statistics_match_batch_statistics(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(15, 2, 3, 3, generator=g) * 3 + 1
    feats[:, 1, 0, 0] = 0.0  # a dead unit
    feats[:14, 1, 1, 1] = 0.0  # active in 1 of 15 feature maps
    stats = UnitStatistics("layer")
    for part in (feats[:3], feats[3:8], feats[8:]):
        stats.update(part)
    torch.testing.assert_close(stats.mean(), feats.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats.std(), feats.std(0, unbiased=True), rtol=1e-5, atol=1e-5)
    assert float(stats.std(min_std=0.5)[1, 0, 0]) == 0.5
    active = stats.active(0.01)
    assert not active[1, 0, 0] and active[1, 1, 1] and active[0].all()
    assert not stats.active(0.1)[1, 1, 1]

    path = stats.save(tmp_path / "m.iba-layer.pt")
    raw = torch.load(path, weights_only=True)  # a plain, safe file
    assert raw["count"] == 15
    loaded = UnitStatistics.load(path)
    assert loaded.layer == "layer" and loaded.count == 15
    torch.testing.assert_close(loaded.std(), stats.std())
    assert path.stat().st_size < 10_000


def test_statistics_not_fitted_and_mismatch(data: torch.Tensor) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        UnitStatistics("x").mean()
    model = single_region_model()
    with pytest.raises(NotFittedError, match="no statistics"):
        IBA(model, "block2").attribute(data[:1], target="finding")
    stats1 = UnitStatistics.fit(model, "block1", data[:16], progress=False)
    with pytest.raises(StatisticsMismatchError, match="block1"):
        IBA(model, "block2", stats1)
    other = single_region_model()
    with torch.no_grad():
        other.dummy.fill_(1.0)
    stats2 = UnitStatistics.fit(other, "block2", data[:16], progress=False)
    with pytest.raises(StatisticsMismatchError, match="other weights"):
        IBA(model, "block2", stats2)


# --- layer names and hooks ----------------------------------------------------------------------


def test_resolve_layer_by_suffix_and_errors() -> None:
    wrapper = nn.Module()
    wrapper.model = nn.Module()
    wrapper.model.features = nn.Sequential(OrderedDict(denseblock1=nn.Identity(), denseblock3=nn.Identity()))
    wrapper.model.extra = nn.Sequential(OrderedDict(denseblock1=nn.Identity()))
    assert resolve_layer(wrapper, "features.denseblock3")[0] == "model.features.denseblock3"
    assert resolve_layer(wrapper, "denseblock3")[0] == "model.features.denseblock3"
    with pytest.raises(UnknownLayerError, match="Available layers: model, model.features"):
        resolve_layer(wrapper, "denseblock9")
    with pytest.raises(UnknownLayerError, match="ambiguous"):
        resolve_layer(wrapper, "denseblock1")


def _hook_free(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and "forward" not in m.__dict__
        for m in model.modules()
    )


class _Boom(TargetBCE):
    def __init__(self, target: str, after: int) -> None:
        super().__init__(target)
        self.calls, self.after = 0, after

    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("boom")
        return super().__call__(scores, clean)


def test_model_left_unmodified_also_after_an_exception(data: torch.Tensor) -> None:
    model = single_region_model().train()
    stats = UnitStatistics.fit(model, "block2", data, progress=False)
    assert model.training  # fitting restored the mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    iba = IBA(model, "block2", stats, steps=3, samples=2)
    iba.attribute(data[:2], target="finding")
    assert _hook_free(model) and model.training and model.dummy.requires_grad
    assert model.dummy.grad is None
    with pytest.raises(RuntimeError, match="boom"):
        iba.attribute(data[:2], target=_Boom("finding", after=1))
    assert _hook_free(model) and model.training and model.dummy.requires_grad
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(RuntimeError, match="boom"):
        reference_attribute(model, "block2", data[:1], _Boom("finding", after=1), stats,
                            BottleneckConfig(steps=3, samples=2))
    assert _hook_free(model) and model.training and model.dummy.grad is None


# --- the lean engine is the reference algorithm ---------------------------------------------------


def test_batched_lean_maps_equal_reference_maps(data: torch.Tensor) -> None:
    model = RegionModel(lambda m: 4.0 * m[:, :1] - 3.0 * m[:, 1:2], (A, B))
    stats = UnitStatistics.fit(model, "block2", data, progress=False)
    x = paint(paint(data[:3], A, 0.8), B, -0.6)
    cfg = dict(steps=5, samples=4, seed=3)
    iba = IBA(model, "features.block2", stats, batch_size=3, **cfg)
    fast = iba.attribute(x, target="finding")
    assert iba.last_results[0].replayed
    ref = reference_attribute(model, "block2", x, TargetBCE("finding"), stats, BottleneckConfig(**cfg))
    span = float(ref.max() - ref.min())
    assert span > 0
    assert float((fast - ref).abs().max()) <= 1e-4 * span
    one_by_one = IBA(model, "block2", stats, batch_size=1, **cfg).attribute(x, target="finding")
    assert torch.equal(fast, one_by_one)  # a map does not depend on its batch
    joint = IBA(model, "block2", stats, batch_size=3, pass_per_image=False, **cfg).attribute(x, target="finding")
    assert float((joint - ref).abs().max()) <= 1e-3 * span
    assert fast.shape == (3, 1, SIZE, SIZE) and bool((fast >= 0).all())


def test_maps_are_bits_per_pixel(data: torch.Tensor) -> None:
    model = single_region_model()
    stats = UnitStatistics.fit(model, "block2", data, progress=False)
    iba = IBA(model, "block2", stats, steps=2, samples=2)
    maps = iba.attribute(paint(data[:1], A, 0.9), target=0)
    cap = iba.last_results[0].capacity
    total_bits = float(cap.sum()) / torch.log(torch.tensor(2.0)).item()
    assert abs(float(maps.sum()) - total_bits) <= 1e-3 * total_bits


# --- bad input ----------------------------------------------------------------------------------


def test_bad_inputs(data: torch.Tensor) -> None:
    model = single_region_model()
    with pytest.raises(UnknownLayerError, match="features.block2"):
        IBA(model, "denseblock3")
    stats = UnitStatistics.fit(model, "block2", data[:32], progress=False)
    iba = IBA(model, "block2", stats, steps=1, samples=1)
    nan = data[:1].clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputRangeError, match="NaN"):
        iba.attribute(nan, target="finding")
    with pytest.raises(UnknownTargetError, match="finding"):
        iba.attribute(data[:1], target="Cardiomegaly")
    with pytest.raises(LossMismatchError, match="regression loss"):
        iba.attribute(data[:1], target=RegressionMSE(3.0))
    with pytest.raises(LossMismatchError, match="regression loss"):
        RegressionIBA(model, "block2", stats).attribute(data[:1], target="finding")
    regressor = RegionModel(lambda m: m[:, :1], (A,), targets=("score",), output="score")
    rstats = UnitStatistics.fit(regressor, "block2", data[:32], progress=False)
    with pytest.raises(LossMismatchError, match="regression head"):
        IBA(regressor, "block2", rstats).attribute(data[:1], target="score")
    with pytest.raises(ValueError, match="2 target values for 1 images"):
        RegressionIBA(regressor, "block2", rstats).attribute(data[:1], target=RegressionMSE([1.0, 2.0]))
    with pytest.raises(ValueError, match="steps"):
        IBA(model, "block2", stats, steps=0)


class SkipModel(RegionModel):
    """Reads the block1 features again behind block2: a skip connection across the bottleneck."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.features.block1(self.features.scale(x))
        f2 = self.features.block2(f1)[:, 0]
        means = torch.stack([f2[:, r, c].mean(dim=(1, 2)) for r, c in self.regions], dim=1)
        return self.head_fn(means) + 3.0 * f1.mean(dim=(1, 2, 3))[:, None]


def test_skip_connection_across_the_bottleneck_falls_back_to_full_passes(data: torch.Tensor) -> None:
    model = SkipModel(lambda m: 6.0 * m[:, :1] - 1.0, (A,))
    stats = UnitStatistics.fit(model, "block2", data, progress=False)
    x = paint(data[:2], A, 0.8)
    cfg = dict(steps=3, samples=2, beta=1.0)
    iba = IBA(model, "block2", stats, **cfg)
    with pytest.warns(UserWarning, match="full network at every step"):
        maps = iba.attribute(x, target="finding")
    assert not iba.last_results[0].replayed
    ref = reference_attribute(model, "block2", x, TargetBCE("finding"), stats, BottleneckConfig(**cfg))
    assert float((maps - ref).abs().max()) <= 1e-4 * float(ref.max() - ref.min())


def test_nan_model_output_is_a_clear_error(data: torch.Tensor) -> None:
    from chexp.iba import AttributionError

    model = RegionModel(lambda m: m[:, :1] * float("nan"), (A,))
    stats = UnitStatistics.fit(model, "block2", data[:8], progress=False)
    with pytest.raises(AttributionError, match="NaN"):
        IBA(model, "block2", stats, steps=1, samples=1).attribute(data[:1], target="finding")


def test_statistics_saved_beside_the_model_give_the_same_maps(tmp_path, data: torch.Tensor) -> None:
    from chexp.iba import statistics_path

    model = single_region_model()
    stats = UnitStatistics.fit(model, "block2", data[:64], progress=False)
    model_file = tmp_path / "region-model.pt"
    torch.save(model.state_dict(), model_file)
    path = stats.save(statistics_path(model_file, stats.layer))
    assert path == tmp_path / "region-model.iba-features.block2.pt"
    loaded = UnitStatistics.load(path)
    x = paint(data[:1], A, 0.8)
    a = IBA(model, "block2", stats, steps=3, samples=2).attribute(x, target="finding")
    b = IBA(model, "block2", loaded, steps=3, samples=2).attribute(x, target="finding")
    assert torch.equal(a, b)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    from chexp.errors import CorruptFileError

    with pytest.raises(CorruptFileError, match="not a chexp IBA statistics file"):
        UnitStatistics.load(tmp_path / "junk.pt")


# --- issue 12: the reference's resize and the reference's cost ------------------------------------


@pytest.mark.parametrize(("low", "high"), [((4, 4), (64, 64)), ((5, 7), (23, 31)), ((1, 3), (4, 9))])
def test_saliency_resize_mirrors_at_the_border_as_skimage(low: tuple[int, int], high: tuple[int, int]) -> None:
    import numpy as np
    from skimage.transform import resize

    from chexp.iba import saliency

    g = torch.Generator().manual_seed(0)
    capacity = torch.rand(2, 3, *low, generator=g, dtype=torch.float64)
    got = saliency(capacity, high)
    scale = low[0] * low[1] / (high[0] * high[1])
    for i in range(2):
        bits = capacity[i].sum(0).numpy() / np.log(2.0) * scale
        expected = resize(bits, high, order=1, preserve_range=True)
        np.testing.assert_allclose(got[i, 0].numpy(), expected, rtol=1e-10, atol=1e-12)


class _RecordsGradFlags(RegionModel):
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.dummy.requires_grad)
        return super().logits(x)


def test_reference_computes_parameter_gradients_as_the_reference_code(data: torch.Tensor) -> None:
    model = _RecordsGradFlags(lambda m: 6.0 * m[:, :1] - 1.0, (A,)).requires_grad_(False)  # as loaded
    model.seen = []
    stats = UnitStatistics.fit(model, "block2", data[:32], progress=False)
    model.seen.clear()
    reference_attribute(model, "block2", data[:1], TargetBCE("finding"), stats, BottleneckConfig(steps=2, samples=2))
    assert model.seen[-2:] == [True, True]  # the optimisation steps had parameter gradients on
    assert not model.dummy.requires_grad and model.dummy.grad is None  # put back
    model.seen.clear()
    IBA(model, "block2", stats, steps=2, samples=2).attribute(data[:1], target="finding")
    assert not any(model.seen)  # the lean engine computes none
