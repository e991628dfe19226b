"""The lambda search rules of the paper and of the released code: Gifsplanation section 4.2 and
Appendix C.

:func:`search_comparison` runs every rule of :data:`chexp.latentshift.search.SEARCH_RULES` on
the same images; :func:`search_summary` averages its table per rule, and :func:`walk_agreement`
compares each rule's bounds with the released-code-style sequential walk of the same rule. The dense prediction curve
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

__all__ = ["search_comparison", "search_summary", "walk_agreement"]


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
        ``sequential_evaluations``, ``sequential_lower``, ``first_step`` (the lambda of the
        sequential walk's first step on the lower side) and ``at_first_step`` (the prediction
        there); and the explanations by rule.
    """
    from ..latentshift.reference import sequential_latent_shift

    for r in rules:
        if r not in SEARCH_RULES:
            raise UnknownNameError(r, SEARCH_RULES, "lambda search rule")
    rows, expls = [], {}
    for r in rules:
        rule = get_search(r)
        ls = LatentShift(classifier, autoencoder, search=rule, n_frames=n_frames)
        e = ls.explain(images, target)
        expls[r] = e
        walk = rule.reference(value_range=rule.value_range(getattr(classifier, "output", "score")))
        first_step = walk.lower.grid()[1]
        at_first_step = ls.prediction_curve(images, target, [first_step])[:, 0]
        for b in range(len(images)):
            row = {"rule": r, "image": b, "lower": float(e.bounds[b, 0]), "upper": float(e.bounds[b, 1]),
                   "lower_at_limit": bool(e.at_limit[b, 0]), "upper_at_limit": bool(e.at_limit[b, 1]),
                   "lower_converged": bool(e.converged[b, 0]), "upper_converged": bool(e.converged[b, 1]),
                   "initial": float(e.initial_prediction[b]), "at_lower": float(e.predictions[b, 0]),
                   "at_upper": float(e.predictions[b, -1]),
                   "evaluations": e.evaluations / len(images), "rounds": e.search_result.rounds,
                   "first_step": first_step, "at_first_step": float(at_first_step[b])}
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


def walk_agreement(bounds: pd.DataFrame) -> pd.DataFrame:
    """Per rule, how its batched bounds compare with the sequential walk of the same rule
    (:func:`search_comparison` run with ``sequential=True``).

    Returns one row per rule: ``same_lower_as_walk`` (share of images whose lower bound equals the
    walk's), ``fall_at_lower_pct`` and ``fall_at_first_step_pct`` (the relative change of the
    prediction at the lower bound and at the walk's first step, ``100 (p - p0) / p0``, as
    ``"min to max"`` over the images).
    """

    def span(values: pd.Series) -> str:
        return f"{values.min():+.0f} to {values.max():+.0f}"

    t = bounds.assign(same=bounds["lower"] == bounds["sequential_lower"],
                      at_lower_pct=100 * (bounds["at_lower"] - bounds["initial"]) / bounds["initial"],
                      first_pct=100 * (bounds["at_first_step"] - bounds["initial"]) / bounds["initial"])
    g = t.groupby("rule", sort=False)
    return pd.DataFrame({"same_lower_as_walk": g["same"].mean(), "first_step": g["first_step"].first(),
                         "fall_at_lower_pct": g["at_lower_pct"].apply(span),
                         "fall_at_first_step_pct": g["first_pct"].apply(span)})
