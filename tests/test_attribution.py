"""One call shape for every attribution method: the registry, target objects, target=None, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from chexp.attribution import Attribution
from chexp.errors import ChexpError, TargetRequiredError, UnknownMethodError, UnknownTargetError
from chexp.experiments import iba_setup, maps
from chexp.iba import IBA, RegressionDeviation, RegressionIBA, fit_statistics
from chexp.methods import METHODS, MethodSpec, build_method, get_method_spec, get_method_specs
from chexp.models.modules import eval_mode, resolve_layer
from chexp.models.small import ConvAutoencoder, SmallClassifier
from chexp.targets import ClassTarget, OnlyOutput, PerImageTarget, RegressionTarget, as_target

pytestmark = pytest.mark.filterwarnings("ignore:IBA statistics", "ignore:the gradient of the target is exactly zero")

SIZE = 32
LAYERS = ("features.block1", "features.block2", "features.block3")
#: settings that keep every method fast on the tiny models
FAST: dict[str, dict[str, Any]] = {
    "integrated": {"n_steps": 4},
    "iterativedelete": {"iterations": 2},
    **{slug: {"n_frames": 3} for slug in METHODS if slug.startswith("latentshift-")},
}


def _classifier(targets: tuple[str, ...] = ("a", "b"), output: str = "probability") -> SmallClassifier:
    torch.manual_seed(0)
    return SmallClassifier(targets, output=output, channels=(4, 4, 4, 4)).eval()  # type: ignore[arg-type]


def _images(n: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, SIZE, SIZE, generator=g) * 1600 - 800


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    clf = _classifier()
    single = _classifier(("a",))
    torch.manual_seed(0)
    ae = ConvAutoencoder(latent_channels=2, width=4, depth=2).eval()
    train = _images(16, seed=2)
    stats = {k: dict(zip(LAYERS, fit_statistics(m, LAYERS, train, 16, 16, False), strict=True))
             for k, m in (("clf", clf), ("single", single))}
    return {"clf": clf, "single": single, "ae": ae, "stats": stats}


def _build(spec: MethodSpec, models: dict[str, Any], which: str = "clf") -> Attribution:
    stats = models["stats"][which]
    iba = {"steps": 2, "samples": 2}
    options = {
        "bottleneck": {"statistics": stats["features.block3"], **iba},
        "bottlenecks": {"statistics": stats, **iba},
    }.get(spec.layer, {})
    return build_method(spec.slug, models[which], models["ae"], **options, **FAST.get(spec.slug, {}))


CLASSIFICATION = [spec for spec in METHODS.values() if spec.slug != "regression-iba"]


@pytest.mark.parametrize("spec", CLASSIFICATION, ids=lambda s: s.slug)
def test_every_method_returns_finite_maps_and_targets_are_equivalent(spec: MethodSpec, models) -> None:
    method = _build(spec, models)
    assert isinstance(method, spec.cls) and isinstance(method, Attribution)
    x = _images()
    by_name = method.attribute(x, target="b")
    assert by_name.shape == (2, 1, SIZE, SIZE) and by_name.dtype == torch.float32
    assert by_name.device == x.device and not by_name.requires_grad and bool(torch.isfinite(by_name).all())
    # a name, its index, a per-image list and the target object explain the same thing
    for same in (1, ["b", "b"], [1, "b"], ClassTarget("b"), PerImageTarget(["b", "b"])):
        assert torch.equal(method.attribute(x, target=same), by_name), same
    # a per-image list explains each image's own output
    mixed = method.attribute(x, target=["a", "b"])
    torch.testing.assert_close(mixed[0], method.attribute(x, target="a")[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mixed[1], by_name[1], rtol=1e-5, atol=1e-6)
    # unknown targets and target=None on a two-output model are ChexpErrors, raised before any work
    bad_targets = (("c", UnknownTargetError), (7, UnknownTargetError), (["a"], ValueError), (None, TargetRequiredError))
    for bad, error in bad_targets:
        with pytest.raises(error):
            method.attribute(x, target=bad)
    with pytest.raises(ChexpError, match="Valid targets: a, b"):
        method.attribute(x, target="c")


@pytest.mark.parametrize("spec", CLASSIFICATION, ids=lambda s: s.slug)
def test_target_none_is_the_only_output(spec: MethodSpec, models) -> None:
    method = _build(spec, models, "single")
    x = _images()
    assert torch.equal(method.attribute(x), method.attribute(x, target="a"))
    assert torch.equal(method(x, None), method.attribute(x, target=0))


def test_regression_target_selects_the_regression_loss(models) -> None:
    reg = models["single"].with_output("score")
    stats = models["stats"]["single"]["features.block3"]
    x = _images()
    method = build_method("Regression IBA", reg, statistics=stats, steps=2, samples=2)
    assert isinstance(method, RegressionIBA)
    default = method.attribute(x)
    assert default.shape == (2, 1, SIZE, SIZE) and bool(torch.isfinite(default).all())
    for same in ("a", 0, RegressionTarget(), RegressionTarget("a"), RegressionDeviation()):
        assert torch.equal(method.attribute(x, target=same), default), same
    # plain IBA explains a RegressionTarget with the same regression loss
    assert torch.equal(IBA(reg, "block3", stats, steps=2, samples=2).attribute(x, RegressionTarget()), default)


def test_registry_round_trip(models) -> None:
    for slug, spec in METHODS.items():
        assert spec.slug == slug
        assert get_method_spec(slug) is spec and get_method_spec(spec.display) is spec
        assert isinstance(_build(spec, models), spec.cls)
    assert len({s.display for s in METHODS.values()}) == len(METHODS)
    # the names the experiments' tables use
    for names in (maps.PAPER_METHODS, maps.ALL_METHODS, iba_setup.PAPER_METHODS):
        assert [s.cls for s in get_method_specs(names)]
    assert get_method_spec("Gradients") is get_method_spec("grad")
    assert build_method("latentshift-mean", models["clf"], models["ae"]).mapper.name == "mean"
    with pytest.raises(ValueError, match="autoencoder"):
        build_method("latentshift-max", models["clf"])


def test_unknown_method_is_a_chexp_error_naming_the_known_ones(models) -> None:
    with pytest.raises(UnknownMethodError, match="Valid: .*Gradients.*grad") as info:
        get_method_spec("gradients")
    assert isinstance(info.value, ChexpError) and isinstance(info.value, KeyError)
    with pytest.raises(UnknownMethodError, match="latentshift-median"):
        build_method("latentshift-median", models["clf"], models["ae"])
    with pytest.raises(UnknownMethodError):
        get_method_specs(["grad", "bogus"])
    with pytest.raises(UnknownMethodError):
        maps.compute_maps(["grad", "bogus"], models["clf"], None, _images(), "a")


def test_as_target() -> None:
    assert as_target(None) == OnlyOutput()
    assert as_target("a") == ClassTarget("a") and as_target(1) == ClassTarget(1)
    assert as_target(["a", 0]) == PerImageTarget(["a", 0]) == PerImageTarget(("a", 0))
    for bad in (1.5, True, ["a", 1.5], {"a"}):
        with pytest.raises(TypeError):
            as_target(bad)  # type: ignore[arg-type]
    clf = _classifier(("a", "", "c"))
    scores = torch.arange(6.0).view(2, 3)
    assert torch.equal(PerImageTarget(["c", "a"])(scores, clf), torch.tensor([2.0, 3.0]))
    assert torch.equal(PerImageTarget(["c", "a"])(scores, clf, torch.tensor([1, 0])), torch.tensor([0.0, 5.0]))
    assert PerImageTarget(["c", "a", "c"]).select(slice(1, 3)) == PerImageTarget(["a", "c"])
    assert PerImageTarget(["c", "a", "c"]).label(clf) == "c, a"
    with pytest.raises(UnknownTargetError):
        PerImageTarget(["a", 1]).columns(clf, 2)  # column 1 has no name
    with pytest.raises(TargetRequiredError, match="name the one to explain. Valid targets: a, c"):
        OnlyOutput().columns(clf, 2)
    assert OnlyOutput().index(_classifier(("", "x"))) == 1


def test_eval_mode_and_resolve_layer() -> None:
    clf = _classifier()
    clf.train()
    clf.features.block1.eval()
    with eval_mode(clf, freeze=True):
        assert not any(m.training for m in clf.modules())
        assert not any(p.requires_grad for p in clf.parameters())
    assert clf.training and not clf.features.block1.training
    assert all(p.requires_grad for p in clf.parameters())
    with pytest.raises(RuntimeError), eval_mode(clf):
        raise RuntimeError
    assert clf.training
    assert resolve_layer(clf, "block2") == ("features.block2", clf.features.block2)
