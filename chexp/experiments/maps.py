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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..methods import build_method, get_method_specs
from ..models.base import Autoencoder, Classifier
from ..progress import tqdm

__all__ = ["ALL_METHODS", "PAPER_METHODS", "compute_maps"]

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
