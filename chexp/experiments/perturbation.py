"""Insertion and deletion curves of every method: CheXplain-IBA Fig. 2.

:func:`perturbation_study` inserts (deletes) each map's most important pixels first into (from)
a blurred image and follows the target's prediction; :class:`PerturbationStudy` holds the curves
and tabulates their AUC per method (Fig. 2) and per task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..methods import get_method_specs
from ..metrics import perturbation_curves
from ..metrics.perturbation import PerturbationCurves
from ..profiles import SampleSet
from ..progress import tqdm
from .iba_setup import PAPER_METHODS, Setup

__all__ = ["PerturbationStudy", "perturbation_study"]


@dataclass
class PerturbationStudy:
    """Insertion and deletion curves of every method, pooled over tasks.

    Attributes:
        insertion, deletion: method -> :class:`~chexp.metrics.perturbation.PerturbationCurves`
            (rows: every image of every task).
        tasks: the task of each row.
    """

    insertion: dict[str, PerturbationCurves]
    deletion: dict[str, PerturbationCurves]
    tasks: list[str]

    def table(self) -> pd.DataFrame:
        """Mean and std of the insertion and deletion AUC per method (paper Fig. 2)."""
        rows = []
        for name in self.insertion:
            ins, dele = self.insertion[name].auc, self.deletion[name].auc
            rows.append({"method": name, "insertion AUC": ins.mean(), "insertion std": _std(ins),
                         "deletion AUC": dele.mean(), "deletion std": _std(dele),
                         "insertion - deletion": ins.mean() - dele.mean(), "n": len(ins)})
        return pd.DataFrame(rows)

    def table_per_task(self) -> pd.DataFrame:
        """Mean insertion and deletion AUC per task and method."""
        tasks = np.asarray(self.tasks)
        rows = []
        for name in self.insertion:
            for task in dict.fromkeys(self.tasks):
                keep = tasks == task
                rows.append({"method": name, "task": task, "insertion AUC": self.insertion[name].auc[keep].mean(),
                             "deletion AUC": self.deletion[name].auc[keep].mean(), "n": int(keep.sum())})
        return pd.DataFrame(rows)


def _std(values: np.ndarray) -> float:
    """Sample standard deviation (ddof 1); NaN for fewer than two values."""
    return values.std(ddof=1) if len(values) > 1 else float("nan")


def _concat_curves(parts: Sequence[PerturbationCurves]) -> PerturbationCurves:
    return PerturbationCurves(parts[0].fractions, np.concatenate([p.scores for p in parts]),
                              np.concatenate([p.auc for p in parts]), parts[0].mode)


def perturbation_study(
    setup: Setup, samples: Mapping[str, SampleSet], methods: Sequence[str] = PAPER_METHODS,
    curve_points: int = 100, batch_size: int = 128, progress: bool = True,
) -> PerturbationStudy:
    """Insertion and deletion (blurred baseline, sigma 10, kernel 19) for every task's images.

    ``curve_points`` sets the pixels changed per step (``ceil(H * W / curve_points)``; the paper
    changes 25 of 50,176 pixels per step, about 2,000 points).
    """
    get_method_specs(methods)
    parts: dict[str, dict[str, list[PerturbationCurves]]] = {"insertion": {}, "deletion": {}}
    tasks: list[str] = []
    for task, s in tqdm(samples.items(), desc="tasks", disable=not progress):
        maps = setup.explain(s.images, task, methods)
        x = s.images.to(setup.device)
        step = math.ceil(x[0].numel() / curve_points)
        for name in methods:
            for mode in ("insertion", "deletion"):
                c = perturbation_curves(setup.classifier, x, maps[name].to(setup.device), task, mode=mode,
                                        pixels_per_step=step, batch_size=batch_size, progress=False)
                parts[mode].setdefault(name, []).append(c)
        tasks += [task] * len(s)
    return PerturbationStudy(
        {n: _concat_curves(c) for n, c in parts["insertion"].items()},
        {n: _concat_curves(c) for n, c in parts["deletion"].items()},
        tasks,
    )
