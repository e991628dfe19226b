"""The four reductions of Latent Shift frames to a 2D map and their IoU: Gifsplanation
Appendix B (Fig. B.1).

:func:`reduction_maps` reduces one explanation's frames every way of
:data:`chexp.latentshift.MAP_METHODS`; :func:`reduction_iou` scores them with the IoU pipeline
of :mod:`chexp.experiments.iou`, all reductions from the same frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..latentshift import MAP_METHODS, LatentShift, LatentShiftExplanation, get_map
from ..latentshift.search import LambdaSearch
from ..models.base import Autoencoder, Classifier
from ..profiles import SampleSet
from .iou import iou_per_sample

__all__ = ["reduction_iou", "reduction_maps"]


def reduction_maps(explanation: LatentShiftExplanation, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Every 2D reduction of one explanation's frames: name -> ``(B, H, W)`` (Appendix B)."""
    names = list(names) if names is not None else list(MAP_METHODS)
    return {f"latentshift-{n}": get_map(n)(explanation.frames, explanation.reconstruction).cpu().numpy()
            for n in names}


def reduction_iou(
    classifier: Classifier,
    autoencoder: Autoencoder,
    samples_by_task: Mapping[str, SampleSet],
    device: str | torch.device = "cpu",
    search: str | LambdaSearch | None = None,
    n_frames: int = 10,
    batch_size: int = 16,
) -> tuple[pd.DataFrame, dict[str, LatentShiftExplanation]]:
    """IoU of each 2D reduction, computed from the same frames (one Latent Shift run per batch).

    Returns:
        the per-sample table of :func:`~chexp.experiments.iou.iou_per_sample` (methods
        ``latentshift-<reduction>``) and the first batch's explanation per task (for figures).
    """
    first: dict[str, LatentShiftExplanation] = {}

    def maps(images: torch.Tensor, task: str) -> dict[str, np.ndarray]:
        e = LatentShift(classifier, autoencoder, search=search, n_frames=n_frames).explain(images, task)
        first.setdefault(task, e)
        return reduction_maps(e)

    return iou_per_sample(maps, classifier, samples_by_task, device, batch_size, progress=False), first
