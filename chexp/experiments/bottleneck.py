"""Latent Shift with autoencoders of several bottleneck sizes: Gifsplanation Fig. 2 and
Appendix D (Fig. D.1, D.2).

The autoencoders come from ``Profile.bottleneck_autoencoders``; :func:`bottleneck_study`
explains the same images with each and measures its reconstruction error and IoU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..latentshift import LatentShift, LatentShiftExplanation
from ..latentshift.search import LambdaSearch
from ..metrics import iou
from ..models.base import Autoencoder, Classifier
from .reconstruction import reconstruction_mae

__all__ = ["BottleneckModel", "bottleneck_study"]


@dataclass
class BottleneckModel:
    """One autoencoder of the bottleneck study and what it gave.

    Attributes:
        latent_channels: channels of the spatial latent; latent_size: values in the latent.
        autoencoder: the model; train_seconds: its training time (from its card).
        mae: held-out mean absolute reconstruction error (intensity units of [-1024, 1024]).
        explanation: Latent Shift explanation of the study images.
        iou: per-image IoU of latentshift-max with the masks.
    """

    latent_channels: int
    latent_size: int
    autoencoder: Autoencoder
    train_seconds: float
    mae: float = float("nan")
    explanation: LatentShiftExplanation | None = None
    iou: np.ndarray = field(default_factory=lambda: np.zeros(0))


def bottleneck_study(
    classifier: Classifier,
    autoencoders: Mapping[int, Autoencoder],
    images: torch.Tensor,
    masks: np.ndarray,
    target: str,
    mae_images: torch.Tensor,
    search: str | LambdaSearch | None = None,
    n_frames: int = 10,
) -> tuple[list[BottleneckModel], pd.DataFrame]:
    """Latent Shift with each autoencoder on the same images (paper Fig. 2, D.1, D.2).

    Returns:
        the :class:`BottleneckModel` list (in the order given) and a table with columns
        ``latent_channels``, ``latent_size``, ``mae``, ``iou_mean``, ``iou_std``,
        ``prediction_drop`` (mean prediction at lambda = 0 minus at the lower bound),
        ``train_seconds``.
    """
    models, rows = [], []
    for c, ae in autoencoders.items():
        ae.eval()
        with torch.no_grad():
            latent_size = int(np.prod(ae.encode(images[:1]).shape[1:]))
        expl = LatentShift(classifier, ae, search=search, n_frames=n_frames).explain(images, target)
        scores = iou(expl.heatmap.cpu(), torch.from_numpy(np.asarray(masks))).numpy()
        card = getattr(ae, "card", None)
        m = BottleneckModel(int(c), latent_size, ae, float(getattr(card, "train_seconds", float("nan"))),
                            reconstruction_mae(ae, mae_images), expl, scores)
        models.append(m)
        rows.append({"latent_channels": m.latent_channels, "latent_size": m.latent_size, "mae": m.mae,
                     "iou_mean": float(np.nanmean(scores)), "iou_std": float(np.nanstd(scores, ddof=1))
                     if len(scores) > 1 else float("nan"),
                     "prediction_drop": float((expl.initial_prediction - expl.predictions[:, 0]).mean()),
                     "train_seconds": m.train_seconds})
    return models, pd.DataFrame(rows)
