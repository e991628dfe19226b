"""How the autoencoder's reconstruction alone changes things: Gifsplanation Appendix K (Table
K.1), and the reconstruction error of Appendix D.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..models.base import Autoencoder, Classifier

__all__ = ["reconstruction_impact", "reconstruction_mae"]


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
    """Mean ``f(x)`` and ``f(D(E(x)))`` per task and label (paper Table K.1)."""
    preds, recon_preds = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            preds.append(classifier(x).cpu())
            recon_preds.append(classifier(autoencoder.decode(autoencoder.encode(x))).cpu())
    p, q = torch.cat(preds).numpy(), torch.cat(recon_preds).numpy()
    rows = []
    for task in tasks:
        j, col = classifier.target_index(task), list(targets).index(task)
        for lab, name in ((1, "positive"), (0, "negative")):
            sel = labels[:, col] == lab
            if sel.any():
                rows.append({"label": name, "task": task, "n": int(sel.sum()), "mean_f_x": float(p[sel, j].mean()),
                             "mean_f_recon": float(q[sel, j].mean()),
                             "diff": float(p[sel, j].mean() - q[sel, j].mean())})
    return pd.DataFrame(rows)
