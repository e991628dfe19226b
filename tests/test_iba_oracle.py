"""An oracle for IBA written from the published algorithm, independent of chexp's bottleneck code.

The oracle below follows the reference implementation's algorithm (Schulz et al. 2020,
BioroboticsLab/IBA ``IBA.analyze``; CheXplain-IBA's ``reverse_lambda`` for Inverse IBA) step by
step, sharing nothing with :mod:`chexp.iba` but the model and the seeded noise stream:

* statistics: per-unit mean, sample standard deviation (floored at ``min_std``) and the active
  units (non-zero in more than 1% of the feature maps), computed here from the hooked features;
* ``lambda = smooth(sigmoid(alpha))`` with a 5 x 5 Gaussian (sigma 1), reflection padding;
* ``Z = lambda R + (1 - lambda) eps`` (inverse: ``lambda eps + (1 - lambda) R``), times the
  active units, ``eps = mean + std * N(0, 1)`` drawn from a generator seeded with ``seed``
  (``samples`` draws per step: the image repeated ``samples`` times);
* per-unit KL ``-0.5 (1 + log((1 - lambda)^2) - (lambda r)^2 - (1 - lambda)^2)``,
  ``r = (R - mean) / std``, times the active units; loss ``+-L_model + beta * mean(KL)``;
* Adam (lr 1, betas 0.9 / 0.999, eps 1e-8) written out here, ``steps`` updates;
* the map: the KL of the LAST FORWARD PASS (mask after ``steps - 1`` updates), averaged over the
  batch, summed over channels, in bits, scaled by ``h w / (H W)`` and resized with
  ``skimage.transform.resize(order=1, preserve_range=True)`` as the reference does.

chexp's engine, its own ``reference_attribute`` and the oracle must agree to 1e-5 of the map's
range on a tiny random convolutional network.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.transform import resize
from torch import nn

from chexp.iba import (
    BLOCK,
    IBA,
    BottleneckConfig,
    InverseIBA,
    OneHotBCE,
    TargetBCE,
    UnitStatistics,
    reference_attribute,
)
from chexp.models.base import Classifier

pytestmark = pytest.mark.filterwarnings("ignore:IBA statistics")

SIZE = 32  # input side; the bottleneck (pool2) is 8 x 8 with 6 channels
TARGETS = ("a", "b", "c")
STEPS, SAMPLES, SEED = 6, 4, 7
BETA = 0.01  # small enough that IBA, Inverse IBA and the two losses give clearly different maps


class TinyConvNet(Classifier):
    """Two conv blocks (the bottleneck after the second), a conv and a linear head, random weights."""

    def __init__(self, seed: int) -> None:
        super().__init__(TARGETS, output="logit")
        torch.manual_seed(seed)
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(1, 4, 3, padding=1), relu1=nn.ReLU(), pool1=nn.AvgPool2d(2),
            conv2=nn.Conv2d(4, 6, 3, padding=1), relu2=nn.ReLU(), pool2=nn.AvgPool2d(2),
        ))
        self.head = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                  nn.Flatten(), nn.Linear(32, len(TARGETS)))
        with torch.no_grad():
            self.head[-1].weight.mul_(30.0)  # the model loss must matter against beta * I

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x / 1024.0))


def images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, SIZE, SIZE, generator=g) * 2 - 1
    x = F.avg_pool2d(x, 3, stride=1, padding=1) * 2  # smooth noise with some structure
    x[:, :, 4:12, 18:28] += 0.8  # a bright patch the features react to
    return (x.clamp(-1, 1) * 1024).contiguous()


# --- the oracle ---------------------------------------------------------------------------------


def oracle_statistics(model: TinyConvNet, data: torch.Tensor, min_std: float = 0.01, threshold: float = 0.01):
    """(mean, std, active) of the bottleneck features over ``data``, float32, shape (C, h, w)."""
    feats: list[torch.Tensor] = []
    handle = model.features.pool2.register_forward_hook(lambda m, i, o: feats.append(o.detach().double()))
    with torch.no_grad():
        model.logits(data)
    handle.remove()
    f = torch.cat(feats)
    n = f.shape[0]
    mean = f.mean(0)
    std = torch.sqrt(((f - mean) ** 2).sum(0) / (n - 1))
    active = ((f != 0).double().sum(0) / n) > threshold
    return mean.float(), torch.maximum(std.float(), torch.tensor(min_std)), active.float()


def oracle_smoothing(channels: int, sigma: float = 1.0):
    size = int(round(2 * sigma)) * 2 + 1
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    kernel = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    kernel = (kernel / kernel.sum()).expand(channels, 1, size, size)
    pad = nn.ReflectionPad2d(size // 2)
    return lambda t: F.conv2d(pad(t), kernel, groups=channels)


def oracle_map(model: TinyConvNet, x: torch.Tensor, target: int, stats, *, beta: float, inverse: bool = False,
               onehot: bool = False, final_mask: bool = False) -> np.ndarray:
    """The reference algorithm for one image ``x (1, 1, H, W)``: the saliency map ``(H, W)``."""
    mean, std, active = stats
    c, h, w = mean.shape
    smooth = oracle_smoothing(c)
    alpha = torch.full((1, c, h, w), 5.0, requires_grad=True)
    noise_gen = torch.Generator().manual_seed(SEED)
    last: dict[str, torch.Tensor] = {}

    def kl(r: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        r_norm = (r - mean) / std
        var_z = (1 - lam) ** 2
        mu_z = r_norm * lam
        return -0.5 * (1 + torch.log(var_z) - mu_z**2 - var_z) * active

    def bottleneck(module: nn.Module, inputs: object, r: torch.Tensor) -> torch.Tensor:
        lam = smooth(torch.sigmoid(alpha)).expand(r.shape[0], -1, -1, -1)
        last["capacity"] = kl(r, lam)
        last["r"] = r.detach()
        eps = std * torch.randn((r.shape[0], c, h, w), generator=noise_gen) + mean
        z = lam * eps + (1 - lam) * r if inverse else lam * r + (1 - lam) * eps
        return z * active

    batch = x.expand(SAMPLES, -1, -1, -1)
    m = torch.zeros_like(alpha)
    v = torch.zeros_like(alpha)
    b1, b2, adam_eps, lr = 0.9, 0.999, 1e-8, 1.0
    handle = model.features.pool2.register_forward_hook(bottleneck)
    try:
        for t in range(1, STEPS + 1):
            alpha.grad = None
            logits = model.logits(batch)
            if onehot:
                labels = torch.zeros_like(logits)
                labels[:, target] = 1.0
                model_loss = F.binary_cross_entropy_with_logits(logits, labels)
            else:
                model_loss = F.binary_cross_entropy_with_logits(logits[:, target], torch.ones(SAMPLES))
            information = last["capacity"].mean(0).mean()
            loss = (-model_loss if inverse else model_loss) + beta * information
            loss.backward()
            with torch.no_grad():
                g = alpha.grad
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                m_hat = m / (1 - b1**t)
                v_hat = v / (1 - b2**t)
                alpha -= lr * m_hat / (torch.sqrt(v_hat) + adam_eps)
    finally:
        handle.remove()
        for p in model.parameters():
            p.grad = None
    with torch.no_grad():
        if final_mask:
            capacity = kl(last["r"], smooth(torch.sigmoid(alpha)).expand(SAMPLES, -1, -1, -1)).mean(0)
        else:
            capacity = last["capacity"].mean(0)
    bits = capacity.sum(0).numpy().astype(np.float64) / np.log(2.0)
    bits *= (h * w) / (SIZE * SIZE)
    return resize(bits, (SIZE, SIZE), order=1, preserve_range=True)


# --- the checks ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup():
    model = TinyConvNet(seed=3).eval()
    data = images(64, seed=1)
    stats = UnitStatistics.fit(model, "pool2", data, progress=False)
    oracle_stats = oracle_statistics(model, data)
    return model, stats, oracle_stats, images(2, seed=5)


def _assert_agree(got: torch.Tensor, expected: np.ndarray, what: str) -> None:
    exp = torch.from_numpy(np.asarray(expected, dtype=np.float64))
    span = float(exp.max() - exp.min())
    assert span > 0
    diff = float((got.double() - exp).abs().max())
    assert diff <= 1e-5 * span, f"{what}: max |diff| = {diff / span:.2e} of the range"


def test_oracle_statistics_equal_chexp_estimator(setup) -> None:
    _, stats, (mean, std, active), _ = setup
    torch.testing.assert_close(stats.mean(), mean, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stats.std(0.01), std, rtol=1e-6, atol=1e-7)
    assert torch.equal(stats.active(0.01).float(), active)
    assert 0 < float(active.mean()) < 1  # some units are masked out


@pytest.mark.parametrize(
    ("name", "beta", "options"),
    [
        ("IBA", BETA, {}),
        ("IBA, one-hot loss", BETA, {"onehot": True}),
        ("IBA, final mask", BETA, {"final_mask": True}),
        ("Inverse IBA", BETA, {"inverse": True}),
    ],
)
def test_chexp_iba_equals_the_oracle(setup, name: str, beta: float, options: dict) -> None:
    model, stats, oracle_stats, x = setup
    targets = [0, 2]
    method = InverseIBA if options.get("inverse") else IBA
    chexp_method = method(model, "pool2", stats, beta=beta, steps=STEPS, samples=SAMPLES, seed=SEED,
                          final_mask=options.get("final_mask", False),
                          loss="onehot" if options.get("onehot") else None)
    maps = chexp_method.attribute(x, target=targets)
    config = BottleneckConfig(beta=beta, steps=STEPS, samples=SAMPLES, seed=SEED,
                              final_mask=options.get("final_mask", False))
    loss = OneHotBCE(targets) if options.get("onehot") else TargetBCE(targets)
    reference = reference_attribute(model, "pool2", x, loss, stats, config,
                                    BLOCK if options.get("inverse") else IBA.flow)
    for i, target in enumerate(targets):
        expected = oracle_map(model, x[i : i + 1], target, oracle_stats, beta=beta, **options)
        _assert_agree(maps[i, 0], expected, f"{name}, engine, image {i}")
        _assert_agree(reference[i, 0], expected, f"{name}, chexp reference, image {i}")


def test_the_map_definitions_differ_and_the_default_is_the_last_forward_pass(setup) -> None:
    """The mask one update later gives a visibly different map: the oracle distinguishes them."""
    model, _, oracle_stats, x = setup
    last_pass = oracle_map(model, x[:1], 0, oracle_stats, beta=BETA)
    final = oracle_map(model, x[:1], 0, oracle_stats, beta=BETA, final_mask=True)
    span = float(last_pass.max() - last_pass.min())
    assert float(np.abs(final - last_pass).max()) > 1e-2 * span
