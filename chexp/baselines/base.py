"""What the Captum-backed baselines share: the classifier followed by its target as one module."""

from __future__ import annotations

import torch
from torch import nn

from ..models.base import Classifier
from ..targets import Target


class TargetScore(nn.Module):
    """``model`` followed by a target: images ``(N, 1, H, W)`` -> the explained score ``(N,)``.

    It holds the classifier as a submodule, so module hooks (Captum's guided backprop, LRP)
    see every layer of the classifier. ``rows`` ``(N,)``, when given, is the image of each input
    row (Captum repeats it with the inputs, e.g. over integrated gradients' steps), so per-image
    targets stay with their images.
    """

    def __init__(self, model: Classifier, target: Target) -> None:
        super().__init__()
        self.model = model
        self.target = target

    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        return self.target(self.model(x), self.model, rows)
