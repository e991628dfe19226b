"""The reader study statistics reproduce the paper's section 4.6 from the real data."""

from __future__ import annotations

import math

import pytest

from chexp.errors import ChecksumError
from chexp.metrics.reader_study import load_reader_study, paired_differences, wilcoxon_summary


def _trunc2(x: float) -> float:
    """The paper prints two decimals by truncation (0.0458 -> 0.04, p 0.579 -> 0.57)."""
    return math.floor(x * 100) / 100


def test_reader_study_reproduces_section_4_6(shared_data):
    ratings = load_reader_study(shared_data / "gifsplanation")
    assert len(ratings) == 960
    # every (reader, example) is rated once with each method
    counts = ratings.groupby(["reader", "example"])["method"].agg(lambda m: tuple(sorted(m)))
    assert set(counts) == {("latentshift", "traditional")}
    assert ratings.groupby("target")["example"].nunique().eq(40).all()
    summary = wilcoxon_summary(ratings).set_index(["question", "label"])
    tp, fp = summary.loc[("confidence", 1)], summary.loc[("confidence", 0)]
    assert tp["n"] == fp["n"] == 240
    # paper: true positives 0.15 ± 0.95, p = 0.01; false positives 0.04 ± 1.06, p = 0.57
    assert (_trunc2(tp["mean"]), _trunc2(tp["std"]), _trunc2(tp["p"])) == (0.15, 0.95, 0.01)
    assert (_trunc2(fp["mean"]), _trunc2(fp["std"]), _trunc2(fp["p"])) == (0.04, 1.06, 0.57)
    assert tp["mean"] == pytest.approx(0.15, abs=1e-12)
    diffs = paired_differences(ratings, "confidence")
    assert len(diffs) == 480 and diffs["difference"].between(-4, 4).all()


def test_reader_study_rejects_modified_files(shared_data, tmp_path):
    import shutil

    shutil.copytree(shared_data / "gifsplanation", tmp_path / "g")
    csv = tmp_path / "g" / "reader-results" / "read0-reader1.csv"
    csv.write_text(csv.read_text().replace("1,4,3", "1,5,3", 1))
    with pytest.raises(ChecksumError):
        load_reader_study(tmp_path / "g")
