"""Evaluation metrics of both papers.

* :mod:`~chexp.metrics.localization`: IoU with top-p binarisation, pointing game, a map's mass
  inside a mask, boxes as masks, mean/std/bootstrap summaries.
* :mod:`~chexp.metrics.classification`: classifier ROC AUC per task.
* :mod:`~chexp.metrics.perturbation`: insertion/deletion curves and AUC, sensitivity-N.
* :mod:`~chexp.metrics.randomization`: cascading randomization for any ``explain(model)``.
* :mod:`~chexp.metrics.severity`: BrixIA zones and severity-map correlation.
* :mod:`~chexp.metrics.reader_study`: the Gifsplanation reader study statistics.
"""

from .classification import auc_per_task, average_precision, classifier_auc, roc_auc
from .localization import Summary, box_to_mask, iou, pointing_game, summarize, top_k_mask, top_k_weights
from .perturbation import GaussianBlur, deletion, insertion, perturbation_curves, sensitivity_n
from .randomization import cascading_randomization
from .severity import brixia_zones, severity_correlation, severity_map

__all__ = [
    "auc_per_task", "average_precision", "classifier_auc", "roc_auc",
    "Summary", "box_to_mask", "iou", "pointing_game", "summarize", "top_k_mask", "top_k_weights",
    "GaussianBlur", "deletion", "insertion", "perturbation_curves", "sensitivity_n",
    "cascading_randomization",
    "brixia_zones", "severity_correlation", "severity_map",
]
