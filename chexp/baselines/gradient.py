"""Input gradient (Simonyan et al. 2014): ``|d score / d x|`` (the papers' "grad")."""

from __future__ import annotations

import torch
from captum.attr import Saliency

from ..attribution import Attribution
from ..models.base import Classifier
from ..targets import Target
from .base import TargetScore


class InputGradient(Attribution):
    """Absolute input gradient of the target score, via Captum's ``Saliency``.

    Args:
        model: classifier to explain.
        absolute: return ``|gradient|`` (the paper's definition; default) or the signed gradient.

    Maps are ``(B, 1, H, W)`` in score units per intensity unit, >= 0 when ``absolute``.
    """

    def __init__(self, model: Classifier, absolute: bool = True) -> None:
        super().__init__(model)
        self.absolute = absolute

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        return Saliency(TargetScore(self.model, target)).attribute(inputs, abs=self.absolute)


class GradientTimesInput(Attribution):
    """Gradient times input, ``x * d score / d x`` (Captum ``InputXGradient``).

    Maps are signed ``(B, 1, H, W)`` in score units.
    """

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        from captum.attr import InputXGradient

        return InputXGradient(TargetScore(self.model, target)).attribute(inputs)
