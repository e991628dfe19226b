"""Which tasks and images an experiment explains, for both papers' figures and tables.

* :func:`default_tasks`: a profile's localisation tasks (Gifsplanation Table 1, Fig. 3, App. B, K).
* :func:`task_samples`: positive images with masks per task (CheXplain-IBA Fig. 2, 4, Tables 1-3).
* :func:`top_predicted`: the images predicted highest for a target (Gifsplanation Fig. 1, 4).
* :func:`most_findings`: the sample positive for the most tasks (Gifsplanation Fig. 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import UnsupportedProfileError
from ..models.base import Classifier
from ..profiles import Profile, SampleSet

__all__ = ["default_tasks", "most_findings", "task_samples", "top_predicted"]


def default_tasks(profile: Any) -> list[str]:
    """The profile's localisation tasks (those with ground-truth masks), without Support Devices
    (a phantom finding that is not a pathology)."""
    return [t for t in profile.tasks if t != "Support Devices"]


def task_samples(profile: Profile, tasks: Sequence[str], n: int, seed: int = 0) -> dict[str, SampleSet]:
    """``n`` positive images per task with ground-truth masks (tasks without masks raise)."""
    out = {}
    for task in tasks:
        s = profile.samples(n, seed=seed, task=task)
        if task not in s.masks:
            raise UnsupportedProfileError(f"profile {profile.name!r} has no ground-truth masks for {task!r}")
        out[task] = s
    return out


def top_predicted(
    classifier: Classifier, images: torch.Tensor, target: str, k: int, below: float | None = None
) -> np.ndarray:
    """Indices of the ``k`` images with the highest prediction for ``target`` (highest first).

    ``below``: prefer images predicted below this value (e.g. 0.99: a saturated probability has
    almost no gradient, so its latent shift barely moves); the others follow, highest first.
    """
    index = classifier.target_index(target)
    with torch.no_grad():
        scores = classifier(images)[:, index].cpu().numpy()
    order = np.argsort(-scores, kind="stable")
    if below is not None:
        order = np.concatenate([order[scores[order] < below], order[scores[order] >= below]])
    return order[:k]


def most_findings(samples: Any, tasks: Sequence[str]) -> int:
    """Index of the first sample positive for the most of ``tasks``."""
    cols = [list(samples.targets).index(t) for t in tasks]
    counts = np.nansum(np.asarray(samples.labels)[:, cols] == 1, axis=1)
    return int(np.argmax(counts))
