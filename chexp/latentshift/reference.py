"""A faithful sequential re-implementation of the released code's lambda search.

As in the gifsplanation code and ``latentshift`` 0.0.6: one image at a time, one decode and
classify per lambda step, a dict cache keyed by lambda, then one decode and classify per output
frame (cache hits reused). It exists to check the batched search (:mod:`.search`) against, and
to time the speedup in ``chexp bench latent-shift``; use :class:`~chexp.latentshift.LatentShift`
for explanations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputShapeError
from ..models.base import Autoencoder, Classifier
from ..models.modules import eval_mode
from ..targets import as_target
from .search import LambdaSearch, SteppedSide

__all__ = ["SequentialResult", "sequential_latent_shift"]


@dataclass
class SequentialResult:
    """Result for one image: bounds, frame lambdas ``(T,)``, predictions ``(T,)``, frames
    ``(T, 1, H, W)`` and the number of decode+classify evaluations (after the gradient)."""

    lower: float
    upper: float
    lambdas: np.ndarray
    predictions: np.ndarray
    frames: torch.Tensor
    evaluations: int


def _walk(side: SteppedSide, compute, value0: float, recon_abs_sum: float) -> float:
    lam = 0.0
    last = value0
    while True:
        value, change = compute(lam)
        if side.stop_at(value, last, value0, change, recon_abs_sum, lam):
            return lam
        last = value
        lam = float(side.schedule.next(lam, side.direction))


def sequential_latent_shift(
    classifier: Classifier,
    autoencoder: Autoencoder,
    image: torch.Tensor,
    target: str | int,
    rule: LambdaSearch,
    n_frames: int = 10,
) -> SequentialResult:
    """Run ``rule.reference()`` step by step on one image ``(1, 1, H, W)``."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise InputShapeError(f"the sequential reference takes one image (1, 1, H, W), got {tuple(image.shape)}")
    reference = rule.reference(value_range=rule.value_range(getattr(classifier, "output", "score")))
    tgt = as_target(target)
    tgt.index(classifier)
    with eval_mode(classifier, autoencoder):
        z = autoencoder.encode(image).detach().requires_grad_(True)
        recon = autoencoder.decode(z)
        pred = reference.transform(tgt(classifier(recon), classifier))
        (dz,) = torch.autograd.grad(pred.sum(), z)
        recon = recon.detach()
        recon_abs_sum = float(recon.abs().sum())
        cache: dict[float, tuple[torch.Tensor, float, float, float]] = {}
        count = 0

        def compute(lam: float) -> tuple[float, float]:
            nonlocal count
            if lam not in cache:
                with torch.no_grad():
                    frame = autoencoder.decode(z + dz * lam)
                    raw = tgt(classifier(frame), classifier)
                    value = float(reference.transform(raw))
                change = float((frame - recon).abs().sum())
                cache[lam] = (frame, float(raw), value, change)
                count += 1
            _, _, value, change = cache[lam]
            return value, change

        value0, _ = compute(0.0)
        lower = _walk(reference.lower, compute, value0, recon_abs_sum) if reference.lower else 0.0
        upper = _walk(reference.upper, compute, value0, recon_abs_sum) if reference.upper else 0.0
        lambdas = np.linspace(lower, upper, n_frames)
        lambdas[0], lambdas[-1] = lower, upper
        for lam in lambdas:
            compute(float(lam))
    frames = torch.cat([cache[float(lam)][0] for lam in lambdas])
    preds = np.array([cache[float(lam)][1] for lam in lambdas])
    # the reference counts lambda = 0 as an evaluation too (it decodes it once more)
    return SequentialResult(lower, upper, lambdas, preds, frames, count)
