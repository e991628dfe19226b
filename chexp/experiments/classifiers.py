"""Running one experiment for each classifier a profile compares (Gifsplanation Table 1, E.1,
K.1 and Fig. 4 / E.1 put XRV-all, XRV-mimic_ch and JF Healthcare side by side).

* :func:`predicted_tasks`: the tasks a classifier has an output for (the paper's "Model does
  not predict" cells are left out, not filled).
* :func:`per_classifier`: the tables of one experiment run once per classifier, stacked, with a
  leading ``classifier`` column (:func:`stack_by_classifier` stacks tables already computed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from ..models.base import Classifier

__all__ = ["per_classifier", "predicted_tasks", "stack_by_classifier"]


def predicted_tasks(classifier: Classifier, tasks: Sequence[str]) -> list[str]:
    """The entries of ``tasks`` that ``classifier`` predicts (has a named output for), in order."""
    return [t for t in tasks if t and t in classifier.targets]


def stack_by_classifier(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The tables of each classifier (name -> table), stacked in that order, with the name in a
    first column ``classifier``; index 0 .. n-1."""
    blocks = [table.assign(classifier=name)[["classifier", *table.columns]] for name, table in tables.items()]
    kept = [block for block in blocks if len(block)] or blocks[:1]  # no empty block in the concatenation
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=["classifier"])


def per_classifier(
    classifiers: Mapping[str, Classifier], run: Callable[[Classifier], pd.DataFrame]
) -> pd.DataFrame:
    """:func:`stack_by_classifier` of ``run(classifier)`` for each of ``classifiers`` (in order)."""
    return stack_by_classifier({name: run(classifier) for name, classifier in classifiers.items()})
