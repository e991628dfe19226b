"""The reader study statistics beside the paper's: Gifsplanation section 4.6 (Fig. 6).

The statistics come from :mod:`chexp.metrics.reader_study`; a new study's packet is built by
:mod:`chexp.experiments.reader_kit`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PAPER_READER_STUDY", "reader_study_vs_paper"]

#: The paper's numbers (section 4.6): question, label -> (mean, std, p) of Latent Shift minus
#: traditional. Only the confidence question is reported.
PAPER_READER_STUDY: dict[tuple[str, int], tuple[float, float, float]] = {
    ("confidence", 1): (0.15, 0.95, 0.01),
    ("confidence", 0): (0.04, 1.06, 0.57),
}


def reader_study_vs_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`chexp.metrics.reader_study.wilcoxon_summary` rows with the paper's numbers beside
    them (``paper_mean``, ``paper_std``, ``paper_p``; NaN where the paper gives none)."""
    out = summary.copy()
    out.insert(1, "predictions", out["label"].map({1: "true positive", 0: "false positive"}))
    for k, col in enumerate(("paper_mean", "paper_std", "paper_p")):
        out[col] = [PAPER_READER_STUDY.get((q, int(lab)), (np.nan,) * 3)[k]
                    for q, lab in zip(out["question"], out["label"], strict=True)]
    return out
