"""Table 3's detection columns: ROC AUC and average precision per task (CheXplain-IBA section 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chexp.errors import InputShapeError
from chexp.experiments.weighted_bce import average_precision, detection_columns


def test_average_precision_by_hand():
    # ranked 0.9 (+), 0.8 (-), 0.7 (+), 0.6 (-): precision 1/1 at the first positive, 2/3 at the second
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, np.nan]) == pytest.approx(5 / 6)
    assert math.isnan(average_precision([0.2, 0.1], [0, 0]))  # no positive: undefined
    with pytest.raises(InputShapeError):
        average_precision([0.1, 0.2], [1, 0, 1])


def test_detection_columns_report_auc_and_ap_per_task_and_their_means():
    scores = np.array([[0.9, 0.1, 0.5], [0.8, 0.4, 0.5], [0.7, 0.3, 0.5], [0.6, 0.2, 0.5]])
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=float)
    row = detection_columns(scores, labels, ["Mass", "Effusion", "Nodule"], ["Mass", "Effusion", "Nodule"])
    assert row["Mass AUC"] == pytest.approx(0.75) and row["Mass AP"] == pytest.approx(5 / 6)
    # Effusion: positives ranked 1st (0.4) and 2nd (0.3) -> AUC 1, AP 1
    assert row["Effusion AUC"] == pytest.approx(1.0) and row["Effusion AP"] == pytest.approx(1.0)
    assert math.isnan(row["Nodule AUC"]) and math.isnan(row["Nodule AP"])  # no positives
    assert row["mean AUC"] == pytest.approx(0.875) and row["mean AP"] == pytest.approx(11 / 12)
    assert list(row) == ["Mass AUC", "Mass AP", "Effusion AUC", "Effusion AP", "Nodule AUC", "Nodule AP",
                         "mean AUC", "mean AP"]
