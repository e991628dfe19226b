"""Batched evaluation of shifted latents: ``D(z + lambda * dz)`` and the classifier's score.

:class:`ShiftEvaluator` is the only place where the decoder and classifier run after the
gradient pass. It takes many ``(image, lambda)`` requests at once, runs them in passes of at
most ``max_batch`` latents, caches every result per image (so frames evaluated by the lambda
search are reused as output frames), and counts what it ran: :attr:`evaluations` (decoded and
classified images) and :attr:`passes` (forward passes).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import InvalidParameterError
from ..models.base import Autoencoder, Classifier

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
#: scores ``(N, T)`` and the image of each row ``(N,)`` -> target scores ``(N,)``
TargetFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Evaluated:
    """One evaluated shift of one image.

    Attributes:
        frame: decoded image ``(1, H, W)`` (on the evaluator's device).
        raw: the classifier's target score (its own output kind, no extra transform).
        value: the score the search works on (``transform(raw)``; equal to ``raw`` unless the
            rule applies an extra sigmoid, as some released code does).
        change: ``sum |frame - reconstruction|`` (for the latentshift-package pixel rule).
    """

    frame: torch.Tensor
    raw: float
    value: float
    change: float


class ShiftEvaluator:
    """Decode and classify shifted latents of a batch, many lambdas per forward pass.

    Args:
        autoencoder: provides :meth:`~chexp.models.Autoencoder.decode`.
        classifier: maps images ``(N, 1, H, W)`` to scores ``(N, T)``.
        target_fn: scores ``(N, T)`` and the image (index in the batch) of each row ``(N,)``
            -> target scores ``(N,)``.
        transform: applied to target scores for the search (identity or an extra sigmoid).
        z: latents ``(B, ...)``; dz: their gradient, same shape.
        recon: ``D(z)``, ``(B, 1, H, W)``; raw0: the classifier's target score on it ``(B,)``.
        max_batch: most latents decoded in one forward pass.
    """

    def __init__(
        self,
        autoencoder: Autoencoder,
        classifier: Classifier,
        target_fn: TargetFn,
        transform: ScoreFn,
        z: torch.Tensor,
        dz: torch.Tensor,
        recon: torch.Tensor,
        raw0: torch.Tensor,
        max_batch: int = 32,
    ) -> None:
        if max_batch < 1:
            raise InvalidParameterError(f"max_batch must be at least 1, got {max_batch}")
        self.autoencoder = autoencoder
        self.classifier = classifier
        self.target_fn = target_fn
        self.transform = transform
        self.z = z.detach()
        self.dz = dz.detach()
        self.recon = recon.detach()
        self.max_batch = max_batch
        self.batch_size = int(z.shape[0])
        flat = self.dz.flatten(1).double()
        #: d value / d lambda at lambda = 0: ``|dz|^2`` (chain rule), per image.
        self.slope = (flat * flat).sum(1).cpu().tolist()
        flat_images = [b for b, slope in enumerate(self.slope) if slope == 0.0]
        if flat_images:
            warnings.warn(
                f"the gradient of the target is exactly zero for image(s) {flat_images} (a saturated "
                "probability, e.g. 1.0 in float32): their frames will not change. Explain the "
                "classifier's logits instead (classifier.with_output('logit')).",
                stacklevel=3,
            )
        self.recon_abs_sum = self.recon.abs().flatten(1).sum(1).double().cpu().tolist()
        values0 = transform(raw0.detach()).double().cpu().tolist()
        self.raw0 = raw0.detach().double().cpu().tolist()
        self.value0 = values0
        self.cache: list[dict[float, Evaluated]] = [
            {0.0: Evaluated(self.recon[b], self.raw0[b], values0[b], 0.0)} for b in range(self.batch_size)
        ]
        self.evaluations = 0
        self.passes = 0

    def known(self, image: int, lam: float) -> bool:
        return float(lam) in self.cache[image]

    def get(self, image: int, lam: float) -> Evaluated:
        return self.cache[image][float(lam)]

    def evaluate(self, requests: Sequence[tuple[int, float]]) -> None:
        """Evaluate every ``(image, lambda)`` not yet cached, ``max_batch`` per forward pass."""
        todo: list[tuple[int, float]] = []
        seen: set[tuple[int, float]] = set()
        for image, lam in requests:
            key = (int(image), float(lam))
            if key in seen or key[1] in self.cache[key[0]]:
                continue
            seen.add(key)
            todo.append(key)
        for start in range(0, len(todo), self.max_batch):
            chunk = todo[start : start + self.max_batch]
            idx = torch.tensor([b for b, _ in chunk], device=self.z.device)
            lams = torch.tensor([lam for _, lam in chunk], dtype=self.z.dtype, device=self.z.device)
            lams = lams.view(-1, *([1] * (self.z.dim() - 1)))
            with torch.no_grad():
                frames = self.autoencoder.decode(self.z[idx] + lams * self.dz[idx])
                raw = self.target_fn(self.classifier(frames), idx)
                value = self.transform(raw)
                change = (frames - self.recon[idx]).abs().flatten(1).sum(1)
            raw_l = raw.double().cpu().tolist()
            value_l = value.double().cpu().tolist()
            change_l = change.double().cpu().tolist()
            for k, (b, lam) in enumerate(chunk):
                self.cache[b][lam] = Evaluated(frames[k], raw_l[k], value_l[k], change_l[k])
            self.evaluations += len(chunk)
            self.passes += 1

    def trace(self, image: int) -> list[tuple[float, float]]:
        """Every evaluated ``(lambda, raw score)`` of one image, sorted by lambda."""
        return sorted((lam, e.raw) for lam, e in self.cache[image].items())
