"""The lambda search rules of the paper and of the released code: Gifsplanation section 4.2 and
Appendix C.

:func:`search_comparison` runs every rule of :data:`chexp.latentshift.search.SEARCH_RULES` on
the same images; :func:`search_summary` averages its table per rule. The dense prediction curve
the rules are drawn on is :func:`chexp.experiments.curves.dense_curve`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from ..errors import UnknownNameError
from ..latentshift import LatentShift, LatentShiftExplanation, get_search
from ..latentshift.search import SEARCH_RULES
from ..models.base import Autoencoder, Classifier

__all__ = ["search_comparison", "search_summary"]


def search_comparison(
    classifier: Classifier,
    autoencoder: Autoencoder,
    images: torch.Tensor,
    target: str,
    rules: Sequence[str] = tuple(SEARCH_RULES),
    n_frames: int = 10,
    sequential: bool = True,
) -> tuple[pd.DataFrame, dict[str, LatentShiftExplanation]]:
    """Run every lambda search rule on the same images.

    Args:
        rules: names in :data:`chexp.latentshift.search.SEARCH_RULES`.
        sequential: also count the evaluations of the released-code-style sequential walk
            (:func:`chexp.latentshift.reference.sequential_latent_shift`, one image at a time).

    Returns:
        one row per (rule, image): ``rule``, ``image``, ``lower``, ``upper``, ``lower_at_limit``,
        ``upper_at_limit``, ``lower_converged``, ``upper_converged`` (False: the rule's level was
        not reached, the bound is the best evaluated lambda), ``initial``, ``at_lower``,
        ``at_upper`` (predictions), ``evaluations`` (batched search + frames), ``rounds``,
        ``sequential_evaluations``, ``sequential_lower``; and the explanations by rule.
    """
    from ..latentshift.reference import sequential_latent_shift

    for r in rules:
        if r not in SEARCH_RULES:
            raise UnknownNameError(r, SEARCH_RULES, "lambda search rule")
    rows, expls = [], {}
    for r in rules:
        rule = get_search(r)
        e = LatentShift(classifier, autoencoder, search=rule, n_frames=n_frames).explain(images, target)
        expls[r] = e
        for b in range(len(images)):
            row = {"rule": r, "image": b, "lower": float(e.bounds[b, 0]), "upper": float(e.bounds[b, 1]),
                   "lower_at_limit": bool(e.at_limit[b, 0]), "upper_at_limit": bool(e.at_limit[b, 1]),
                   "lower_converged": bool(e.converged[b, 0]), "upper_converged": bool(e.converged[b, 1]),
                   "initial": float(e.initial_prediction[b]), "at_lower": float(e.predictions[b, 0]),
                   "at_upper": float(e.predictions[b, -1]),
                   "evaluations": e.evaluations / len(images), "rounds": e.search_result.rounds}
            if sequential:
                ref = sequential_latent_shift(classifier, autoencoder, images[b : b + 1], target, rule, n_frames)
                row["sequential_evaluations"] = ref.evaluations
                row["sequential_lower"] = ref.lower
            rows.append(row)
    return pd.DataFrame(rows), expls


def search_summary(bounds: pd.DataFrame) -> pd.DataFrame:
    """Mean over images per rule of :func:`search_comparison`'s table, with ``fall`` (the
    prediction at lambda = 0 minus at the lower bound), the share of images with a bound at a
    rule's limit (``at_limit``) and the share whose search met its rule on both sides
    (``converged``)."""
    t = bounds.assign(fall=bounds["initial"] - bounds["at_lower"],
                      at_limit=bounds["lower_at_limit"] | bounds["upper_at_limit"],
                      converged=bounds["lower_converged"] & bounds["upper_converged"])
    cols = [c for c in ("lower", "upper", "initial", "at_lower", "fall", "at_limit", "converged", "evaluations",
                        "sequential_evaluations") if c in t.columns]
    return t.groupby("rule", sort=False)[cols].mean()
