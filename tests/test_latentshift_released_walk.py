"""The stepped lambda rules against the released walk on non-monotone prediction curves.

The released code walks lambda from 0 one step at a time and stops at the first step where a
stop test holds (usually "the prediction rose since the last step"). On a curve with local rises
that first stop can come long before the level the rule aims at, so the batched search must
return the first switch of the stop test, not any switch.

Each fake model pair gives every image its own prediction curve ``p(lambda) = sigmoid(l(lambda))``
with ``l`` a seeded random trend plus sine wiggles, exactly as a function of lambda (the latent
is one number and the classifier undoes the gradient's scale). The oracle is the released loop
written plainly (decode, classify, compare with the last step, step on), independent of
:mod:`chexp.latentshift.search`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chexp.latentshift import (
    AppendixCSearch,
    Gifsplanation2021Search,
    GifsplanationCurrentSearch,
    LatentShift,
    LatentShiftPackageSearch,
)
from chexp.models.base import Autoencoder, Classifier

OFFSET = 100.0  # the reconstruction's intensity (sets the latentshift rule's 5 % image change)


class CurveBank:
    """Seeded random curves ``l(t) = b + t / w + sum_k a_k (sin(t / f_k + phase_k) - sin(phase_k))``.

    Wiggles of periods 6 to 600 lambda units whose slope is up to twice the trend's, so that
    about half of the curves rise locally where the trend falls; a few are monotone.
    """

    def __init__(self, n: int, seed: int, wiggles: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.b = rng.uniform(-1.0, 4.0, n)
        self.w = np.exp(rng.uniform(math.log(20.0), math.log(1000.0), n))
        self.f = np.exp(rng.uniform(math.log(1.0), math.log(100.0), (n, wiggles)))
        self.a = self.f / self.w[:, None] * rng.uniform(0.0, 2.0, (n, wiggles))
        self.a[rng.random((n, wiggles)) < 0.3] = 0.0
        self.a[: max(1, n // 16)] = 0.0  # monotone curves too
        self.phase = rng.uniform(0.0, 2 * math.pi, (n, wiggles))
        slope0 = 1 / self.w + (self.a / self.f * np.cos(self.phase)).sum(1)
        self.phase[slope0 <= 0.2 / self.w] += math.pi  # the curve must rise at lambda = 0 (l'(0) > 0)
        self.b, self.w, self.f, self.a, self.phase = (torch.tensor(v, dtype=torch.float64)
                                                      for v in (self.b, self.w, self.f, self.a, self.phase))

    def logit(self, t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        f, a, ph = self.f[ids], self.a[ids], self.phase[ids]
        wig = (a * (torch.sin(t[:, None] / f + ph) - torch.sin(ph))).sum(1)
        return self.b[ids] + t / self.w[ids] + wig

    def slope0(self, ids: torch.Tensor) -> torch.Tensor:
        return 1 / self.w[ids] + (self.a[ids] / self.f[ids] * torch.cos(self.phase[ids])).sum(1)


class IdAE(Autoencoder):
    """Latent ``(shift, image id)``; frames ``(B, 1, 2, 2)``: top row ``OFFSET + shift``, bottom row the id."""

    def encode(self, x):
        n = x.shape[0]
        return torch.stack([torch.zeros(n, dtype=x.dtype), torch.arange(n, dtype=x.dtype)], 1)

    def decode(self, z):
        top = (OFFSET + z[:, 0])[:, None].expand(-1, 2)
        bottom = z[:, 1][:, None].expand(-1, 2)
        return torch.stack([top, bottom], 1)[:, None]


class CurveClassifier(Classifier):
    """``p = sigmoid(l_id(lambda))`` where ``lambda = (frame - OFFSET) / s_id`` and ``s_id`` is the
    gradient the search will see (``s^2 = d transform(p) / d lambda`` at 0), so that the shift
    ``z + lambda * dz`` gives exactly ``p(lambda)``."""

    def __init__(self, bank: CurveBank, extra_sigmoid: bool) -> None:
        super().__init__(["finding"], output="probability")
        self.bank = bank
        ids = torch.arange(len(bank.b))
        p0 = torch.sigmoid(bank.b)
        dvalue = p0 * (1 - p0) * bank.slope0(ids)
        if extra_sigmoid:
            q0 = torch.sigmoid(p0)
            dvalue = dvalue * q0 * (1 - q0)
        self.scale = dvalue.sqrt()

    def logits(self, x):
        ids = x[:, 0, 1, 0].round().long()
        lam = (x[:, 0, 0, 0] - OFFSET) / self.scale[ids]
        return self.bank.logit(lam, ids)[:, None]


def _fine_then_coarse(direction: int):
    return lambda lam: lam + direction * (1.0 if abs(lam) < 10 else 10.0)


# The released loops: (step, stop test, limit test) per side; a test sees the prediction ``cur``,
# the previous one ``last``, the start ``v0``, lambda, and ``diff`` / ``total``: sum |frame - recon|
# and sum |recon|.
RELEASED = {
    AppendixCSearch: [(
        lambda lam: lam - 10.0,
        lambda cur, last, v0, lam, diff, total: last < cur or v0 - 0.5 > cur,
        lambda lam: lam <= -1000,
    )],
    Gifsplanation2021Search: [(
        _fine_then_coarse(-1),
        lambda cur, last, v0, lam, diff, total: last < cur or v0 - 0.5 > cur,
        lambda lam: lam <= -1000,
    ), (
        _fine_then_coarse(+1),
        lambda cur, last, v0, lam, diff, total: last > cur or v0 + 0.05 < cur,
        lambda lam: lam >= 1000,
    )],
    GifsplanationCurrentSearch: [(
        _fine_then_coarse(-1),
        lambda cur, last, v0, lam, diff, total: last < cur or v0 - 0.15 > cur,
        lambda lam: lam <= -1000,
    )],
    LatentShiftPackageSearch: [(
        lambda lam: lam - 10 + lam // 10,
        lambda cur, last, v0, lam, diff, total: last < cur or cur < 0.05 or v0 - 0.8 > cur or diff > 0.05 * total,
        lambda lam: lam <= -3000,
    )],
}


def released_walk(clf, ae, x, b, extra_sigmoid, step, stops, at_limit) -> tuple[float, bool, int]:
    """The released code's loop for image ``b`` of ``x`` (the images only tell the fake pair
    which curve each one has): (bound, stopped only by the limit, decode+classify evaluations)."""
    transform = torch.sigmoid if extra_sigmoid else (lambda v: v)
    z = ae.encode(x)[b : b + 1].requires_grad_(True)
    recon = ae.decode(z)
    (dz,) = torch.autograd.grad(transform(clf(recon)[:, 0]).sum(), z)
    recon, total = recon.detach(), float(recon.detach().abs().sum())
    with torch.no_grad():
        v0 = float(transform(clf(recon)[:, 0]))
        lam, last, count = 0.0, v0, 0
        while True:
            frame = ae.decode(z.detach() + lam * dz)
            cur = float(transform(clf(frame)[:, 0]))
            count += lam != 0.0  # lambda = 0 is the reconstruction (evaluated once, for the gradient)
            if stops(cur, last, v0, lam, float((frame - recon).abs().sum()), total):
                return lam, False, count
            if at_limit(lam):
                return lam, True, count
            last = cur
            lam = float(step(lam))


def _images(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, 2, 2, generator=g, dtype=torch.float64) * 1000 - 500)


N_CURVES = 96


@pytest.mark.parametrize("exhaustive", [False, True], ids=["guided", "exhaustive"])
@pytest.mark.parametrize("rule_cls", list(RELEASED), ids=lambda c: c.__name__)
def test_batched_search_returns_the_released_walks_first_stop(rule_cls, exhaustive):
    rule = rule_cls(exhaustive=exhaustive)
    bank = CurveBank(N_CURVES, seed=list(RELEASED).index(rule_cls))
    ae, clf = IdAE(), CurveClassifier(bank, rule.extra_sigmoid)
    x = _images(N_CURVES)
    expl = LatentShift(clf, ae, search=rule, n_frames=2).explain(x, "finding")
    sides = RELEASED[rule_cls]
    walks = [[released_walk(clf, ae, x, b, rule.extra_sigmoid, *side) for side in sides]
             for b in range(N_CURVES)]
    want = [[w[0][0], w[1][0] if len(w) > 1 else 0.0] for w in walks]
    want_limit = [[w[0][1], len(w) > 1 and w[1][1]] for w in walks]
    got = expl.bounds.tolist()
    wrong = [(b, got[b], want[b]) for b in range(N_CURVES) if got[b] != want[b]]
    assert not wrong, f"{len(wrong)}/{N_CURVES} curves differ from the released walk, (image, got, want): {wrong[:8]}"
    assert expl.at_limit.tolist() == want_limit
    # confirming the first stop takes every step of the walk; the batched search takes them in a
    # few rounds (exhaustive: rounds of `chunk` steps) with a few steps of overshoot
    walk_evals = sum(n for w in walks for _, _, n in w)
    assert walk_evals <= expl.search_evaluations <= walk_evals + 16 * len(sides) * N_CURVES
    if not exhaustive:
        assert expl.search_result.rounds <= 6
