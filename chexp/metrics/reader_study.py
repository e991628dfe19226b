"""The Gifsplanation reader study (paper section 4.6, Fig. 6, Appendix F).

Two radiologists rated 240 predictions of the XRV-all model twice, once with the traditional
maps (method A: input gradient, guided backprop, integrated gradients) and once with Latent
Shift (method B), on two 5-point questions. Rows are paired by (reader, example); the paper
reports the mean ± std of the paired difference B - A and a Wilcoxon signed-rank test, for true
and false positive predictions separately.

Data: ``trial_record.json.gz`` and ``reader-results/read{0,1}-reader{1,2}.csv`` of
github.com/mlmed/gifsplanation at a pinned commit, fetched with :func:`chexp.data.remote.fetch`
(checksums below) or read from a local folder with the same layout.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from ..errors import DataUnavailableError, UnknownNameError

#: Files of the study (path in the repository -> sha256).
FILES: dict[str, str] = {
    "trial_record.json.gz": "a4fe9990e72f0a35280d4fcd506c4ae148e2b076e49e58b519a8cc8d98ae2e5e",
    "reader-results/read0-reader1.csv": "76a863dd16374dbf5805ad8658732ecd26eccb5c0c8192945d40072ca97fc6c9",
    "reader-results/read0-reader2.csv": "f85cb3bc723d560bd09549edede66de061d8fb1943494be2d73606a6e203b772",
    "reader-results/read1-reader1.csv": "5d82aca45168ff0d87497d1c8ea3bcb7c15d76a95b3fc3f8370f1394dc93ea3e",
    "reader-results/read1-reader2.csv": "ccc038ca2ee958bc0295d76960cb2ac28cb30b6751143f3c692aa71848e704d1",
}

#: Survey columns -> short names.
QUESTIONS: dict[str, str] = {
    "How confident are you in the models prediction? (1-5)": "confidence",
    "Is the model looking at the correct feature? (1-5)": "correct_feature",
}

#: ``trial`` value of the method shown -> method name.
METHODS: dict[int, str] = {0: "traditional", 1: "latentshift"}


def _paths(folder: str | Path | None) -> dict[str, Path]:
    """Local paths of :data:`FILES`, checksum-verified (fetched when ``folder`` is ``None``)."""
    from ..data.remote import fetch, verify

    if folder is None:
        return {p: fetch("gifsplanation", p, sha) for p, sha in FILES.items()}
    root = Path(folder)
    missing = [p for p in FILES if not (root / p).is_file()]
    if missing:
        raise DataUnavailableError(f"{root} lacks the reader study files {missing}")
    return {p: verify(root / p, sha) for p, sha in FILES.items()}


def load_reader_study(folder: str | Path | None = None) -> pd.DataFrame:
    """All ratings in long form, one row per (reader, read, example).

    Args:
        folder: a folder laid out like the gifsplanation repository; ``None`` fetches the files
            (found locally when ``$CHEXP_DATA_DIR`` mirrors the source).

    Returns:
        columns ``reader`` (1, 2), ``read`` (0, 1), ``example`` (1..240), ``target``,
        ``label`` (1 true positive, 0 false positive), ``dataset``, ``method``
        ("traditional"/"latentshift"), ``confidence``, ``correct_feature``.
    """
    paths = _paths(folder)
    with gzip.open(paths["trial_record.json.gz"], "rt") as handle:
        record = json.load(handle)
    trials = pd.DataFrame(
        {
            "example": np.arange(1, len(record) + 1),
            "target": [r["target"] for r in record],
            "label": [int(r["label"]) for r in record],
            "dataset": [r["dataset"] for r in record],
            "trial": [int(r["trial"]) for r in record],
        }
    )
    frames = []
    for read in (0, 1):
        for reader in (1, 2):
            df = pd.read_csv(paths[f"reader-results/read{read}-reader{reader}.csv"]).rename(
                columns={"Example": "example", **QUESTIONS}
            )
            df["read"], df["reader"] = read, reader
            frames.append(df)
    ratings = pd.concat(frames, ignore_index=True).merge(trials, on="example", how="left", validate="m:1")
    # read 0 shows the method named by `trial`; read 1 shows the other one
    shown = np.where(ratings["read"] == 0, ratings["trial"], 1 - ratings["trial"])
    ratings["method"] = pd.Series(shown).map(METHODS).to_numpy()
    cols = ["reader", "read", "example", "target", "label", "dataset", "method", *QUESTIONS.values()]
    return ratings[cols].sort_values(["reader", "example", "read"], ignore_index=True)


def paired_differences(ratings: pd.DataFrame, question: str = "confidence") -> pd.DataFrame:
    """Latent Shift minus traditional rating per (reader, example).

    Returns columns ``reader``, ``example``, ``target``, ``label``, ``traditional``,
    ``latentshift``, ``difference``.
    """
    if question not in QUESTIONS.values():
        raise UnknownNameError(question, QUESTIONS.values(), "question")
    wide = ratings.pivot_table(
        index=["reader", "example", "target", "label"], columns="method", values=question, aggfunc="first"
    ).reset_index()
    wide.columns.name = None
    wide["difference"] = wide["latentshift"] - wide["traditional"]
    return wide


def wilcoxon_summary(ratings: pd.DataFrame, by: tuple[str, ...] = ("label",)) -> pd.DataFrame:
    """Mean ± std of the paired differences and the Wilcoxon signed-rank test, per question and
    per group (default: true vs false positives, as the paper's section 4.6).

    The test is scipy's ``wilcoxon`` with its defaults (zero differences dropped, the "wilcox"
    method, two-sided); ``std`` has ``ddof=0`` (numpy's default).

    Returns one row per (question, group) with ``n``, ``mean``, ``std``, ``statistic``, ``p``.
    """
    rows = []
    for question in QUESTIONS.values():
        diffs = paired_differences(ratings, question)
        for key, group in diffs.groupby(list(by)):
            d = group["difference"].to_numpy(dtype=float)
            test = wilcoxon(d) if np.any(d != 0) else None
            rows.append(
                {
                    "question": question,
                    **dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
                    "n": len(d),
                    "mean": float(d.mean()),
                    "std": float(d.std()),
                    "statistic": float(test.statistic) if test else float("nan"),
                    "p": float(test.pvalue) if test else float("nan"),
                }
            )
    return pd.DataFrame(rows)
