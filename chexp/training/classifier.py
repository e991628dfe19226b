"""Training a :class:`~chexp.models.small.SmallClassifier` (classifiers and regression heads), and
the (weighted) binary cross-entropy of CheXplain-IBA Table 3."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..models.small import SmallClassifier
from .configs import Training
from .fit import fit


def classifier_architecture(
    targets: Sequence[str], output: str, channels: Sequence[int], input_size: int
) -> dict[str, object]:
    """The :class:`~chexp.models.small.SmallClassifier` arguments (as saved in the model card)."""
    return {"targets": list(targets), "output": output, "channels": list(channels), "input_size": input_size}


def pos_weight(labels: torch.Tensor) -> torch.Tensor:
    """``N_neg / N_pos`` per column of ``labels (N, T)`` in [0, 1] (soft labels count fractionally);
    1 where a column lacks positives or negatives."""
    n_pos, n_neg = labels.sum(0), (1 - labels).sum(0)
    defined = (n_pos > 0) & (n_neg > 0)
    return torch.where(defined, n_neg / n_pos.clamp(min=1e-6), torch.ones_like(n_pos))


def bce(labels: torch.Tensor, weighted: bool) -> nn.BCEWithLogitsLoss:
    """Binary cross-entropy on logits; ``weighted``: positives weighted by :func:`pos_weight` of the
    training ``labels (N, T)``, else by 1 (the weights are the loss's ``pos_weight``)."""
    weights = pos_weight(labels) if weighted else torch.ones(labels.shape[1], device=labels.device)
    return nn.BCEWithLogitsLoss(pos_weight=weights)


def train_classifier(
    architecture: dict[str, object],
    inputs: Callable[[np.ndarray], torch.Tensor],
    targets: torch.Tensor,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: Training,
    weight_decay: float,
    *,
    bias: float | None = None,
    desc: str,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> SmallClassifier:
    """A :class:`~chexp.models.small.SmallClassifier` initialised with ``schedule.seed`` and fitted
    (:func:`chexp.training.fit`) on ``loss(logits (B, T), targets[idx])``.

    Args:
        architecture: :class:`~chexp.models.small.SmallClassifier` arguments.
        inputs: batch indices -> images ``(B, 1, S, S)`` in [-1024, 1024] on ``device``.
        targets: training targets, first dimension the training set, on ``device``.
        bias: initial output bias (a regression head starts at the mean target and learns the
            deviation); ``None`` keeps the default initialisation.
        device: where to train.
    """
    torch.manual_seed(schedule.seed)
    model = SmallClassifier(**architecture).to(device)  # type: ignore[arg-type]
    if bias is not None:
        with torch.no_grad():
            model.classifier.bias.fill_(bias)
    fit(model, lambda idx: loss(model.logits(inputs(idx)), targets[idx]), len(targets), schedule, weight_decay,
        desc=desc, progress=progress)
    return model
