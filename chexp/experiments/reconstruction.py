"""How the autoencoder's reconstruction alone changes things: Gifsplanation Appendix K (Table
K.1; :func:`reconstruction_impact_by_classifier` for the three classifiers it compares), and the
reconstruction error of Appendix D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..models.base import Autoencoder, Classifier
from .classifiers import predicted_tasks, stack_by_classifier

__all__ = ["reconstruction_impact", "reconstruction_impact_by_classifier", "reconstruction_mae"]


def reconstruction_mae(autoencoder: Autoencoder, images: torch.Tensor, batch_size: int = 64) -> float:
    """Mean ``|D(E(x)) - x|`` over ``images`` (intensity units)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            total += float((autoencoder.decode(autoencoder.encode(x)) - x).abs().sum())
            count += x.numel()
    return total / max(count, 1)


def reconstruction_impact(classifier: Classifier, autoencoder: Autoencoder, images: torch.Tensor,
                          labels: np.ndarray, targets: Sequence[str], tasks: Sequence[str],
                          batch_size: int = 64) -> pd.DataFrame:
    """Mean ``f(x)`` and ``f(D(E(x)))`` per task and label (paper Table K.1).

    Args:
        images: ``(N, 1, S, S)`` in [-1024, 1024], on the models' device.
        labels: ``(N, len(targets))``: 1 positive, 0 negative, NaN unknown (left out).
        tasks: the targets to report (each must be an output of ``classifier``).

    Returns:
        columns ``label`` (``positive`` / ``negative``), ``task``, ``n``, ``mean_f_x``,
        ``mean_f_recon``, ``diff`` (their difference); rows by task, then label; a (task, label)
        without images is left out.
    """
    (p, q), = _predictions({"": classifier}, autoencoder, images, batch_size).values()
    return _impact_rows(classifier, p, q, labels, targets, tasks)


def reconstruction_impact_by_classifier(
    classifiers: Mapping[str, Classifier], autoencoder: Autoencoder, images: torch.Tensor, labels: np.ndarray,
    targets: Sequence[str], tasks: Sequence[str], batch_size: int = 64,
) -> pd.DataFrame:
    """:func:`reconstruction_impact` of each classifier (name -> model) on the same images and
    reconstructions (each batch is reconstructed once), for the ``tasks`` it predicts.

    Returns :func:`reconstruction_impact`'s columns after a first column ``classifier`` (the name
    in ``classifiers``); one block of rows per classifier, in order.
    """
    predictions = _predictions(classifiers, autoencoder, images, batch_size)
    return stack_by_classifier({
        name: _impact_rows(classifier, *predictions[name], labels, targets, predicted_tasks(classifier, tasks))
        for name, classifier in classifiers.items()})


def _predictions(classifiers: Mapping[str, Classifier], autoencoder: Autoencoder, images: torch.Tensor,
                 batch_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (``f(x)``, ``f(D(E(x)))``), each ``(N, T)`` of that classifier's outputs."""
    preds: dict[str, list[torch.Tensor]] = {name: [] for name in classifiers}
    recon_preds: dict[str, list[torch.Tensor]] = {name: [] for name in classifiers}
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            recon = autoencoder.decode(autoencoder.encode(x))
            for name, classifier in classifiers.items():
                preds[name].append(classifier(x).cpu())
                recon_preds[name].append(classifier(recon).cpu())
    return {name: (torch.cat(preds[name]).numpy(), torch.cat(recon_preds[name]).numpy()) for name in classifiers}


def _impact_rows(classifier: Classifier, p: np.ndarray, q: np.ndarray, labels: np.ndarray, targets: Sequence[str],
                 tasks: Sequence[str]) -> pd.DataFrame:
    """Table K.1's rows of one classifier from its predictions ``p`` on the images and ``q`` on
    their reconstructions."""
    rows = []
    for task in tasks:
        j, col = classifier.target_index(task), list(targets).index(task)
        for lab, name in ((1, "positive"), (0, "negative")):
            sel = labels[:, col] == lab
            if sel.any():
                rows.append({"label": name, "task": task, "n": int(sel.sum()), "mean_f_x": float(p[sel, j].mean()),
                             "mean_f_recon": float(q[sel, j].mean()),
                             "diff": float(p[sel, j].mean() - q[sel, j].mean())})
    return pd.DataFrame(rows, columns=["label", "task", "n", "mean_f_x", "mean_f_recon", "diff"])
