"""Galleries of Latent Shift explanations: Gifsplanation Appendix I (Fig. I.1) and J (Fig. I.2, J.1).

* :func:`pathology_gallery`: for each finding, the Latent Shift explanation of the images
  predicted highest among its positives (Fig. I.1, "extra images of the Latent Shift method
  applied to different pathologies").
* :func:`true_false_positives`: for one finding, true positives (positives predicted above the
  threshold) beside the classifier's highest-scoring negatives, the false positives when they
  score above the threshold (Fig. I.2 / J.1: "Pneumothorax predictions of both true and false
  positives", the false positives of the reader study).
* :func:`explain_gallery`: one :class:`Gallery` (explanation and a table) of given images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import InvalidParameterError
from ..latentshift import LatentShift, LatentShiftExplanation
from ..metrics import iou
from ..models.base import Autoencoder, Classifier
from ..profiles import SampleSet
from ..training.fit import predict
from .samples import top_predicted

__all__ = ["Gallery", "explain_gallery", "pathology_gallery", "true_false_positives"]

#: Latent Shift prefers images predicted below this (a saturated probability has almost no
#: gradient, so its latent shift barely moves; as for Fig. 1).
UNSATURATED = 0.99


@dataclass
class Gallery:
    """Latent Shift explanations of some images of one target, with what a gallery shows.

    Attributes:
        explanation: the :class:`~chexp.latentshift.LatentShiftExplanation` of the ``B`` images.
        masks: ``(B, H, W)`` bool ground truth of the target (all False where there is none).
        table: one row per image: ``sample``, ``target``, ``label`` (1 positive, 0 negative),
            ``prediction`` (on the input), ``initial_prediction`` (on the reconstruction),
            ``lambda_lower``, ``prediction_lower`` (at the counterfactual frame),
            ``lambda_upper``, ``prediction_upper``, ``iou`` of latentshift-max (NaN without a mask).
    """

    explanation: LatentShiftExplanation
    masks: np.ndarray
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)


def explain_gallery(
    classifier: Classifier,
    autoencoder: Autoencoder,
    samples: SampleSet,
    indices: Sequence[int],
    target: str,
    search: str = "paper",
    n_frames: int = 10,
    device: str | torch.device = "cpu",
) -> Gallery:
    """Latent Shift (latentshift-max) explanations of ``samples`` at ``indices`` for ``target``.

    Args:
        samples: the images, labels and (where known) masks; ``indices`` into them (at least one).
        search, n_frames: the lambda search rule and the frames of each explanation.
    """
    if len(indices) == 0:
        raise InvalidParameterError(f"no images to explain for {target!r}")
    idx = np.asarray(indices, dtype=int)
    images = samples.images[idx].to(device)
    size = images.shape[-2:]
    masks = np.asarray(samples.masks[target])[idx] if target in samples.masks else np.zeros((len(idx), *size), bool)
    expl = LatentShift(classifier, autoencoder, search=search, n_frames=int(n_frames)).explain(images, target)
    with torch.no_grad():
        prediction = classifier(images)[:, classifier.target_index(target)].cpu().numpy()
    label = samples.labels[idx, list(samples.targets).index(target)]
    ids = samples.ids or [str(k) for k in range(len(samples))]
    table = pd.DataFrame({
        "sample": [ids[i] for i in idx], "target": target, "label": label, "prediction": prediction,
        "initial_prediction": expl.initial_prediction.cpu().numpy(),
        "lambda_lower": expl.lambdas[:, 0].cpu().numpy(), "prediction_lower": expl.predictions[:, 0].cpu().numpy(),
        "lambda_upper": expl.lambdas[:, -1].cpu().numpy(), "prediction_upper": expl.predictions[:, -1].cpu().numpy(),
        "iou": iou(expl.heatmap.cpu(), torch.from_numpy(masks)).numpy(),
    })
    return Gallery(expl, masks, table)


def pathology_gallery(
    classifier: Classifier,
    autoencoder: Autoencoder,
    pools: Mapping[str, SampleSet],
    n_per_task: int,
    search: str = "paper",
    n_frames: int = 10,
    device: str | torch.device = "cpu",
) -> dict[str, Gallery]:
    """Fig. I.1: for each task, the ``n_per_task`` images of its pool predicted highest (below
    0.99 first, as Fig. 1 picks) explained by Latent Shift.

    Args:
        pools: task -> images positive for it (:meth:`~chexp.profiles.Profile.samples` with ``task``).

    Returns:
        task -> :class:`Gallery`, in the order of ``pools``.
    """
    out = {}
    for task, pool in pools.items():
        pick = top_predicted(classifier, pool.images.to(device), task, int(n_per_task), below=UNSATURATED)
        out[task] = explain_gallery(classifier, autoencoder, pool, pick, task, search, n_frames, device)
    return out


def true_false_positives(
    classifier: Classifier,
    autoencoder: Autoencoder,
    pool: SampleSet,
    target: str,
    k: int,
    threshold: float = 0.5,
    search: str = "paper",
    n_frames: int = 10,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
) -> dict[str, Gallery]:
    """Fig. I.2 / J.1: true positives and the classifier's highest-scoring negatives for ``target``.

    Args:
        pool: held-out images with labels for ``target`` (all labels, not only positives).
        k: images of each kind.
        threshold: a prediction at or above it is positive.

    Returns:
        ``{"true positive": ..., "false positive": ...}``: the ``k`` positives predicted highest
        at or above ``threshold`` (below 0.99 first), and the ``k`` negatives predicted highest,
        highest first, whether or not they reach ``threshold`` (their table's ``prediction``
        says which are false positives). The table of each has a column ``predicted_positive``.

    Raises:
        InvalidParameterError: the pool has no positive predicted at or above ``threshold``, or
            no negative.
    """
    labels = pool.labels[:, list(pool.targets).index(target)]
    images = pool.images.to(device)
    scores = predict(classifier, images, batch_size)[:, classifier.target_index(target)].cpu().numpy()
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    tp = positives[scores[positives] >= threshold]
    if not len(tp) or not len(negatives):
        raise InvalidParameterError(
            f"the pool of {len(pool)} images has {len(tp)} true positives and {len(negatives)} negatives for "
            f"{target!r} at threshold {threshold}; draw a larger pool"
        )
    chosen = tp[top_predicted(classifier, images[tp], target, int(k), below=UNSATURATED)]
    fp = negatives[top_predicted(classifier, images[negatives], target, int(k))]
    out = {}
    for kind, picks in (("true positive", chosen), ("false positive", fp)):
        gallery = explain_gallery(classifier, autoencoder, pool, picks, target, search, n_frames, device)
        gallery.table["predicted_positive"] = gallery.table["prediction"] >= threshold
        out[kind] = gallery
    return out
