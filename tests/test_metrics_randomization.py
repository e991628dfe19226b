"""Cascading randomization: correlation 1 at step 0, drops for a weight-dependent method, and
the model passed in is never changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from chexp.baselines import InputGradient
from chexp.errors import UnknownLayerError
from chexp.metrics._util import spearman
from chexp.metrics.randomization import cascading_randomization, parameterized_layers, ssim
from chexp.models.small import SmallClassifier


def test_cascading_randomization_gradient():
    torch.manual_seed(0)
    model = SmallClassifier(("Mass", "Effusion"), channels=(4, 8), output="logit").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = (torch.rand(2, 1, 16, 16) * 2 - 1) * 1024
    result = cascading_randomization(model, lambda m: InputGradient(m).attribute(x, "Mass"), progress=False)
    layers = parameterized_layers(model)
    assert result.steps == ["original", *layers] and layers[0] == "classifier"
    np.testing.assert_allclose(result.pearson[0], 1.0)
    np.testing.assert_allclose(result.spearman[0], 1.0)
    np.testing.assert_allclose(result.ssim[0], 1.0)
    assert np.all(result.pearson[-1] < 0.5) and np.all(result.ssim[-1] < 0.9)
    for k, v in model.state_dict().items():  # original untouched
        torch.testing.assert_close(v, before[k])
    # grouped steps, and a bad layer name fails before any work
    grouped = cascading_randomization(
        model, lambda m: InputGradient(m).attribute(x, "Mass"), steps=[layers[0], layers[1:3]], progress=False
    )
    assert grouped.pearson.shape == (3, 2)
    with pytest.raises(UnknownLayerError):
        cascading_randomization(model, lambda m: x, steps=["nope"], progress=False)
    # a method that ignores the weights stays at correlation 1
    const = cascading_randomization(model, lambda m: x.clone(), progress=False)
    np.testing.assert_allclose(const.pearson, 1.0)


def test_spearman_and_ssim_match_scipy_and_skimage():
    rng = np.random.default_rng(0)
    a = torch.as_tensor(np.round(rng.normal(size=(3, 100)), 1))
    b = torch.as_tensor(np.round(rng.normal(size=(3, 100)), 1)) + a
    for i in range(3):
        assert float(spearman(a[i], b[i])) == pytest.approx(spearmanr(a[i], b[i]).statistic, abs=1e-12)
    m1 = torch.rand(1, 16, 16)
    m2 = m1 + 0.1 * torch.rand(1, 16, 16)
    n = lambda t: ((t - t.min()) / (t.max() - t.min())).double().numpy()  # noqa: E731
    assert ssim(m1, m2)[0] == pytest.approx(structural_similarity(n(m1[0]), n(m2[0]), data_range=1.0))
