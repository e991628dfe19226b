"""ROC AUC per task against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from chexp.errors import InputShapeError
from chexp.metrics.classification import auc_per_task, classifier_auc, roc_auc
from chexp.models.base import Classifier


def test_roc_auc_matches_sklearn_with_ties_and_nan():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(float)
    s = np.round(rng.normal(size=200) + y, 1)  # rounding creates ties
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    y_nan = y.copy()
    y_nan[:20] = np.nan
    assert roc_auc(s, y_nan) == pytest.approx(roc_auc_score(y[20:], s[20:]), abs=1e-12)
    assert roc_auc([0.1, 0.9], [0, 1]) == 1.0 and roc_auc([0.9, 0.1], [0, 1]) == 0.0
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1])) and math.isnan(roc_auc([0.1, np.nan], [0, 1]))
    with pytest.raises(InputShapeError):
        roc_auc([0.1], [1, 0])


class _Lin(Classifier):
    def __init__(self) -> None:
        super().__init__(("A", "", "C"), output="logit")
        self.fc = nn.Linear(16, 3)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_classifier_auc_per_named_task():
    torch.manual_seed(0)
    model = _Lin()
    x = (torch.rand(40, 1, 4, 4) * 2 - 1) * 1024
    with torch.no_grad():
        scores = model(x).numpy()
    labels = (scores + np.random.default_rng(0).normal(0, 200, scores.shape) > 0).astype(float)
    got = classifier_auc(model, x, labels, batch_size=7, progress=False)
    assert set(got) == {"A", "C"}  # the unnamed column is left out
    for j, name in ((0, "A"), (2, "C")):
        assert got[name] == pytest.approx(roc_auc_score(labels[:, j], scores[:, j]), abs=1e-6)
    with pytest.raises(InputShapeError):
        auc_per_task(scores[:, :2], labels[:, :2], model.targets)
