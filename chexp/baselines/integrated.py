"""Integrated gradients (Sundararajan et al. 2017) via Captum."""

from __future__ import annotations

import torch
from captum.attr import IntegratedGradients as _CaptumIG

from ..attribution import Attribution
from ..errors import InvalidParameterError
from ..models.base import Classifier
from ..targets import Target
from .base import TargetScore


class IntegratedGradients(Attribution):
    """Integrated gradients from a baseline image to the input (the papers' "integrated").

    Args:
        model: classifier to explain.
        n_steps: Riemann steps (the paper: 100).
        baseline: baseline intensity, a float (default 0.0: all-zero, mid-grey in [-1024, 1024])
            or a tensor broadcastable to the inputs.
        internal_batch_size: images per forward/backward pass (``None``: all ``B * n_steps``
            at once); lower it to save memory.
        method: Captum's integration rule (``"gausslegendre"`` is Captum's default,
            ``"riemann_trapezoid"`` etc. are accepted).

    Maps are signed ``(B, 1, H, W)``; they sum to about ``score(x) - score(baseline)``.
    """

    def __init__(
        self,
        model: Classifier,
        n_steps: int = 100,
        baseline: float | torch.Tensor = 0.0,
        internal_batch_size: int | None = 25,
        method: str = "gausslegendre",
    ) -> None:
        super().__init__(model)
        if n_steps < 1:
            raise InvalidParameterError(f"n_steps must be >= 1, got {n_steps}")
        self.n_steps = n_steps
        self.baseline = baseline
        self.internal_batch_size = internal_batch_size
        self.method = method

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        ig = _CaptumIG(TargetScore(self.model, target))
        rows = torch.arange(inputs.shape[0], device=inputs.device)  # repeated with the steps
        return ig.attribute(
            inputs,
            baselines=self.baseline,
            additional_forward_args=(rows,),
            n_steps=self.n_steps,
            method=self.method,
            internal_batch_size=self.internal_batch_size,
        )
