"""Attribution maps of several methods for one batch: Gifsplanation Fig. 4 and Appendix E.1.

Every attribution method is reached by its name in the paper's tables, a slug of
:data:`chexp.methods.METHODS`: ``grad``, ``guided``, ``integrated``, ``gradcam``, ``lrp``,
``iterativedelete`` (the baselines of :mod:`chexp.baselines`) and ``latentshift-max`` / ``-mean``
/ ``-minmax`` / ``-sliding`` / ``-counterfactual`` (:mod:`chexp.latentshift`; the last is the single
frame that the released code's "latentshift-max", hence the paper's Table 1, computed).
:func:`chexp.methods.build_method` builds one for a classifier (and autoencoder); all of them have
``attribute(images (B, 1, H, W), target) -> maps (B, 1, H, W)``.

Maps are compared as absolute values (``|map|``), as the paper does for its cascading
randomization and for input gradients; signed methods (integrated gradients, LRP) therefore
count negative evidence as important too. Table 1's IoU of these maps is
:func:`chexp.experiments.iou.compute_iou`.

Fig. 4 / E.1 (:func:`explain_top_predicted_by_classifier`, :func:`stack_examples`) show the maps
of each classifier compared on the images it predicts highest, a figure row per (classifier, image).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import UnknownTargetError
from ..methods import build_method, get_method_specs
from ..metrics import iou
from ..models.base import Autoencoder, Classifier
from ..profiles import SampleSet
from ..progress import tqdm
from .classifiers import predicted_tasks
from .samples import top_predicted

__all__ = ["ALL_METHODS", "PAPER_METHODS", "ExampleMaps", "compute_maps", "explain_top_predicted",
           "explain_top_predicted_by_classifier", "stack_examples"]

#: The methods of the paper's Table 1, in its order.
PAPER_METHODS: tuple[str, ...] = ("grad", "guided", "integrated", "latentshift-max")
#: Table 1 methods plus Grad-CAM, LRP, Iterative Delete (Appendix E) and the released code's
#: single-frame latentshift-max (``latentshift-counterfactual``).
ALL_METHODS: tuple[str, ...] = ("grad", "guided", "integrated", "gradcam", "lrp", "iterativedelete",
                                "latentshift-max", "latentshift-counterfactual")


def compute_maps(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    images: torch.Tensor,
    target: str,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """``|map|`` of each method for one batch.

    Args:
        methods: slugs (or display names) of :data:`chexp.methods.METHODS`.
        images: ``(B, 1, H, W)`` in [-1024, 1024] on the models' device.
        target: the explained output.
        settings: per-method keyword arguments (e.g. ``{"integrated": {"n_steps": 20}}``).

    Returns:
        name -> float32 array ``(B, H, W)``, >= 0, on the CPU.
    """
    get_method_specs(methods)
    settings = settings or {}
    classifier.check_input(images)
    out: dict[str, np.ndarray] = {}
    for name in tqdm(methods, desc=f"maps ({target})", disable=not progress):
        method = build_method(name, classifier, autoencoder, **dict(settings.get(name, {})))
        maps = method.attribute(images, target)
        out[name] = maps.detach().abs().float().cpu().numpy()[:, 0]
    return out


@dataclass(frozen=True)
class ExampleMaps:
    """Examples explained for a figure (Fig. 4 / E.1), with their masks and maps.

    Attributes:
        target: the explained output.
        images: float32 ``(K, 1, S, S)`` in [-1024, 1024], on the CPU.
        masks: bool ``(K, S, S)``, the target's ground truth.
        ids: the samples' identifiers.
        predictions: ``(K,)``, the classifier's output for ``target`` on each image.
        maps: method -> float32 ``(K, S, S)``, >= 0 (:func:`compute_maps`).
        titles: one title per example (a figure row), ``"<target> p=<prediction>"``.
    """

    target: str
    images: torch.Tensor
    masks: np.ndarray
    ids: list[str]
    predictions: np.ndarray
    maps: dict[str, np.ndarray]
    titles: list[str]

    def iou_table(self) -> pd.DataFrame:
        """Columns ``sample``, ``prediction``, then the IoU of each method's map with the mask."""
        table = pd.DataFrame({name: iou(torch.from_numpy(m), torch.from_numpy(self.masks)).numpy()
                              for name, m in self.maps.items()})
        table.insert(0, "prediction", self.predictions)
        table.insert(0, "sample", self.ids)
        return table


def explain_top_predicted(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    pool: SampleSet,
    target: str,
    k: int,
    device: str | torch.device = "cpu",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> ExampleMaps:
    """The maps of ``methods`` for the ``k`` images of ``pool`` that ``classifier`` (on
    ``device``) predicts highest for ``target`` (Fig. 4: positive predictions explained).

    ``pool.masks[target]`` is the ground truth (``pool``: images positive for ``target``).
    """
    pick = top_predicted(classifier, pool.images.to(device), target, int(k))
    images = pool.images[pick].to(device)
    with torch.no_grad():
        predictions = classifier(images)[:, classifier.target_index(target)].cpu().numpy()
    maps = compute_maps(methods, classifier, autoencoder, images, target, settings=settings, progress=progress)
    return ExampleMaps(target, images.cpu(), np.asarray(pool.masks[target])[pick], [pool.ids[i] for i in pick],
                       predictions, maps, [f"{target} p={p:.2f}" for p in predictions])


def explain_top_predicted_by_classifier(
    methods: Sequence[str],
    classifiers: Mapping[str, Classifier],
    autoencoder: Autoencoder | None,
    pool: SampleSet,
    target: str,
    k: int,
    device: str | torch.device = "cpu",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> dict[str, ExampleMaps]:
    """:func:`explain_top_predicted` of each classifier (name -> model) that predicts ``target``,
    in order; each picks its own ``k`` highest predictions from the same ``pool``.

    Raises:
        UnknownTargetError: none of ``classifiers`` predicts ``target``.
    """
    chosen = {name: c for name, c in classifiers.items() if predicted_tasks(c, [target])}
    if not chosen:
        raise UnknownTargetError(target, sorted({t for c in classifiers.values() for t in c.targets}))
    return {name: explain_top_predicted(methods, c, autoencoder, pool, target, k, device, settings, progress)
            for name, c in chosen.items()}


def stack_examples(examples: Mapping[str, ExampleMaps]) -> ExampleMaps:
    """The examples of several classifiers (name -> :func:`explain_top_predicted`), one after
    another, for one figure with a row per (classifier, example); with several classifiers each
    title starts with the classifier's name. One classifier's examples are returned as they are.
    """
    if len(examples) == 1:
        return next(iter(examples.values()))
    parts = list(examples.values())
    return ExampleMaps(
        target=parts[0].target,
        images=torch.cat([e.images for e in parts]),
        masks=np.concatenate([e.masks for e in parts]),
        ids=[i for e in parts for i in e.ids],
        predictions=np.concatenate([e.predictions for e in parts]),
        maps={m: np.concatenate([e.maps[m] for e in parts]) for m in parts[0].maps},
        titles=[f"{name}: {title}" for name, e in examples.items() for title in e.titles],
    )
