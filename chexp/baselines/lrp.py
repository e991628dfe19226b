"""Layer-wise relevance propagation (Bach et al. 2015) via Captum's ``LRP``.

Why Captum and not Zennit: Captum is already a dependency of chexp (all other baselines use
it), and its ``LRP`` has default rules for every layer type of the torchxrayvision DenseNet
(``Conv2d``, ``BatchNorm2d``, ``Linear``, pooling: epsilon rule; ``ReLU``: passed through).
Zennit offers richer composites (e.g. EpsilonPlusFlat) and BatchNorm canonizers, but as an
extra dependency and without a canonizer for DenseNet's pre-activation BatchNorm. Functional
operations (``torch.cat``, ``F.relu``, ``F.adaptive_avg_pool2d``) pass relevance through
unchanged, which is exact for the linear ones.

Relevance starts at the logit: a "probability" classifier is explained through
``model.with_output("logit")`` (sigmoid and calibration are not layers LRP can decompose).
"""

from __future__ import annotations

import torch
from captum.attr import LRP as _CaptumLRP

from ..models.base import Classifier
from ..targets import Target
from .base import Attribution, TargetScore


class LRP(Attribution):
    """LRP maps with Captum's default rules (epsilon = 1e-9 unless a module sets ``rule``).

    Args:
        model: classifier to explain; its logits are decomposed.

    Maps are signed ``(B, 1, H, W)`` relevances that sum to about the target logit.
    """

    name = "lrp"

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        model = self.model if self.model.output != "probability" else self.model.with_output("logit")
        return _CaptumLRP(TargetScore(model, target)).attribute(inputs)
