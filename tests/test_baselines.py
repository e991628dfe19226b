"""Baseline attribution methods against closed forms and independent implementations."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchxrayvision as xrv
from torch import nn

from chexp.baselines import (
    LRP,
    GradCAM,
    GradientTimesInput,
    GuidedBackprop,
    InputGradient,
    IntegratedGradients,
    IterativeDelete,
    count_functional_relus,
    module_relus,
)
from chexp.errors import InputRangeError, UnknownTargetError
from chexp.models.base import Classifier
from chexp.models.small import SmallClassifier

TARGETS = ("Cardiomegaly", "Effusion")


class Linear(Classifier):
    """logits = x.flatten() @ W.T (no bias): every gradient method has a closed form."""

    def __init__(self, size: int = 8, output: str = "logit") -> None:
        super().__init__(TARGETS, output=output)  # type: ignore[arg-type]
        self.fc = nn.Linear(size * size, len(TARGETS), bias=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class Quadratic(Classifier):
    """score = sum(v * x^2) / 2, so d score / dx = v * x."""

    def __init__(self, v: torch.Tensor) -> None:
        super().__init__(("Mass",), output="score")
        self.v = nn.Parameter(v, requires_grad=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return (0.5 * self.v * x * x).flatten(1).sum(1, keepdim=True)


class TinyCNN(Classifier):
    def __init__(self) -> None:
        super().__init__(TARGETS, output="logit")
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1, stride=2)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(8, len(TARGETS))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu2(self.conv2(self.relu1(self.conv1(x / 1024))))
        return self.fc(h.mean((2, 3)))


def xrv_densenet() -> Classifier:
    from chexp.models.xrv import XRVDenseNet

    model = XRVDenseNet(xrv.models.DenseNet(weights=None), output="logit").eval()
    model.input_size = None  # small images keep the test fast; the graph is the same
    return model


def images(b: int = 2, size: int = 8) -> torch.Tensor:
    return (torch.rand(b, 1, size, size) * 2 - 1) * 1024


def test_every_method_shares_the_call_shape_and_checks_inputs():
    model = SmallClassifier(TARGETS, channels=(4, 8)).eval()
    x = images(2, 16)
    for cls in (InputGradient, GradientTimesInput, GuidedBackprop, IntegratedGradients, GradCAM, LRP, IterativeDelete):
        method = cls(model)
        maps = method.attribute(x, "Effusion")
        assert maps.shape == (2, 1, 16, 16) and torch.isfinite(maps).all(), cls.__name__
        with pytest.raises(UnknownTargetError, match="Valid targets: Cardiomegaly, Effusion"):
            method.attribute(x, "Pneumonia")
        with pytest.raises(InputRangeError):
            method.attribute(x * 10, "Effusion")
    with pytest.raises(TypeError, match="Classifier"):
        InputGradient(nn.Linear(2, 2))  # type: ignore[arg-type]


def test_gradient_methods_closed_form_on_linear_model():
    model = Linear()
    x = images()
    w = model.fc.weight[1].detach().view(1, 1, 8, 8)
    torch.testing.assert_close(InputGradient(model).attribute(x, "Effusion"), w.abs().expand(2, -1, -1, -1))
    torch.testing.assert_close(InputGradient(model, absolute=False).attribute(x, 1), w.expand(2, -1, -1, -1))
    torch.testing.assert_close(GradientTimesInput(model).attribute(x, "Effusion"), x * w)
    # integrated gradients of a linear model from a zero baseline: exactly (x - 0) * w
    torch.testing.assert_close(IntegratedGradients(model).attribute(x, "Effusion"), x * w, rtol=1e-4, atol=1e-3)


def test_integrated_gradients_completeness_and_baseline():
    torch.manual_seed(1)
    model = SmallClassifier(TARGETS, channels=(4, 8), output="probability").eval()
    x = images(2, 16)
    ig = IntegratedGradients(model, n_steps=100)
    assert ig.n_steps == 100 and ig.baseline == 0.0
    maps = ig.attribute(x, "Cardiomegaly")
    with torch.no_grad():
        delta = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    torch.testing.assert_close(maps.sum((1, 2, 3)), delta, rtol=2e-2, atol=1e-4)


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


def _reference_guided_backprop(model: Classifier, x: torch.Tensor, column: int) -> torch.Tensor:
    """Independent guided backprop: every F.relu call (module or functional) made guided."""
    original = F.relu

    def guided(t: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        return _GuidedReLU.apply(t)

    x = x.clone().requires_grad_(True)
    F.relu = guided
    try:
        out = model(x)[:, column].sum()
    finally:
        F.relu = original
    return torch.autograd.grad(out, x)[0]


def test_guided_backprop_handles_xrv_functional_relu():
    torch.manual_seed(0)
    model = xrv_densenet()
    x = images(1, 32)
    column = model.target_index("Cardiomegaly")
    reference = _reference_guided_backprop(model, x, column)
    assert count_functional_relus(model, x) == 1  # torchxrayvision's F.relu in features2
    with module_relus(model) as patched:
        assert patched == 1 and count_functional_relus(model, x) == 0
    # the model is restored
    assert "features2" not in model.model.__dict__ and not hasattr(model.model, "chexp_final_relu")
    fixed = GuidedBackprop(model).attribute(x, "Cardiomegaly")
    torch.testing.assert_close(fixed, reference, rtol=1e-4, atol=1e-6 * float(reference.abs().max()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = GuidedBackprop(model, fix_functional_relu=False).attribute(x, "Cardiomegaly")
    assert any("functional ReLU" in str(w.message) for w in caught)
    # without the fix the last ReLU passes negative gradients: a clearly different map
    assert float((plain - reference).abs().max()) > 0.05 * float(reference.abs().max())


def test_gradcam_matches_manual_computation():
    torch.manual_seed(0)
    model = TinyCNN().eval()
    x = images(2, 16)
    layer = model.conv2
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    xr = x.clone().requires_grad_(True)
    score = model(xr)[:, 1].sum()
    handle.remove()
    grads = torch.autograd.grad(score, store["a"])[0]
    cam = F.relu((grads.mean((2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True))
    expected = F.interpolate(cam, size=(16, 16), mode="bilinear")
    got = GradCAM(model, layer="conv2").attribute(x, "Effusion")
    torch.testing.assert_close(got, expected.detach())
    # default layer: the last leaf module with a spatial output
    from chexp.baselines.gradcam import last_spatial_layer

    assert last_spatial_layer(model, x) == "relu2"
    auto = GradCAM(model).attribute(x, "Effusion")  # relu2 output: same map as conv2's after ReLU
    assert auto.shape == (2, 1, 16, 16) and torch.isfinite(auto).all()


def test_lrp_epsilon_on_linear_is_gradient_times_input_and_conserves_on_densenet():
    from zennit.composites import EpsilonPlus

    model = Linear(output="probability")  # explained through its logit
    x = images()
    w = model.fc.weight[0].detach().view(1, 1, 8, 8)
    got = LRP(model, composite=EpsilonPlus).attribute(x, "Cardiomegaly")
    torch.testing.assert_close(got, x * w, rtol=1e-4, atol=1e-3)
    torch.manual_seed(0)
    dense = xrv_densenet()
    xd = images(1, 32)
    relevance = LRP(dense).attribute(xd, "Mass")
    with torch.no_grad():
        logit = dense(xd)[:, dense.target_index("Mass")]
    assert torch.isfinite(relevance).all()
    torch.testing.assert_close(relevance.sum((1, 2, 3)), logit, rtol=1e-3, atol=1e-3)


def test_iterative_delete_closed_form():
    torch.manual_seed(0)
    v = torch.rand(1, 1, 4, 4) + 0.5
    model = Quadratic(v)
    x = torch.rand(1, 1, 4, 4) * 1000 + 1  # positive: grad = v * x > 0
    g = (v * x).flatten()
    top = torch.argsort(g, descending=True, stable=True)
    # delete variant, 2 iterations of 2 pixels: the 2nd gradient has the top 2 pixels zeroed
    g2 = g.clone()
    g2[top[:2]] = 0
    expected = ((g + g2) / 2).view(1, 1, 4, 4)
    got = IterativeDelete(model, iterations=2, fraction=2 / 16).attribute(x, "Mass")
    torch.testing.assert_close(got, expected)
    # third iteration deletes the next two (never re-deletes)
    g3 = g2.clone()
    g3[top[2:4]] = 0
    got3 = IterativeDelete(model, iterations=3, fraction=2 / 16).attribute(x, "Mass")
    torch.testing.assert_close(got3, ((g + g2 + g3) / 3).view(1, 1, 4, 4))
    # keep-top variant (reference code): only the top 2 pixels survive the first iteration
    gk = torch.zeros_like(g)
    gk[top[:2]] = g[top[:2]]
    keep = IterativeDelete(model, iterations=2, fraction=2 / 16, keep_top=True).attribute(x, "Mass")
    torch.testing.assert_close(keep, ((g + gk) / 2).view(1, 1, 4, 4))
    # linear model: the gradient never changes, so the map is |w|
    lin = Linear()
    xl = images(1)
    torch.testing.assert_close(
        IterativeDelete(lin, iterations=3).attribute(xl, 0), lin.fc.weight[0].detach().abs().view(1, 1, 8, 8)
    )
