"""Notebooks under the ``cohen`` profile (real radiographs, models chexp trains on them).

Runs the CheXplain-IBA notebooks that need only the BrixIA detectors and the global-score
regressor (about a minute of training on 2 cores, cached), at smoke size, and checks that the
pages name the profile and that the tables are about the BrixIA targets. Needs ``../shared/data``
(fails instead of skipping when ``CHEXP_REQUIRE_DATA=1``).

At this size (two images per task, detectors trained for a minute) the maps' IoU and severity
correlations carry no reliable signal (measured: IoU 0-0.35 per image, severity r -0.15 to 0.35),
so the tables are checked against each other and against a random map's correlation, which
does not depend on the models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chexp.cohen.dataset import DETECTOR_TARGETS

STEMS = ["20_ci_inverse_iba", "22_ci_regression_iba", "23_ci_localization", "26_ci_severity_correlation"]
TASKS = list(DETECTOR_TARGETS[:2])
SMOKE = {
    "n_samples": 2,
    "tasks": TASKS,
    "other_tasks": TASKS[:1],
    "iba_steps": 3,
    "ig_steps": 8,
    "sensitivity_points": 4,
    "sensitivity_masks": 4,
    "n_statistics": 100,
    "betas": [3.0],
}


@pytest.fixture(scope="module")
def run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from chexp.reproduce import reproduce

    out = tmp_path_factory.mktemp("cohen_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHEXP_DATA_DIR", str(shared_data))
        result = reproduce("cohen", only=STEMS, params=SMOKE, output_dir=out, build=False, progress=False)
    return result


def test_notebooks_run_under_the_cohen_profile(run):
    assert [r.name for r in run.runs] == STEMS
    assert not run.failed, run.summary()
    for r in run.runs:  # each page says which profile and models produced it
        text = json.dumps(json.loads(r.path.read_text())["cells"])
        assert "Profile **cohen**" in text and "cohen-brixia-detectors" in text, r.name


def test_localization_table_is_about_the_brixia_targets(run):
    out = run.run_dir / "outputs" / "23_ci_localization"
    t = pd.read_csv(out / "table1_iou.csv", index_col="task")
    assert list(t.index) == [*TASKS, "mean"]
    assert np.isfinite(t.to_numpy(float)).all()
    # the task rows are the means of the per-sample table, the mean row their mean
    long = pd.read_csv(out / "iou_per_sample.csv")
    assert long.groupby(["task", "method"]).size().eq(SMOKE["n_samples"]).all()
    per_task = long.pivot_table(index="task", columns="method", values="IoU", aggfunc="mean")
    np.testing.assert_allclose(t.loc[TASKS], per_task.loc[TASKS, t.columns])
    np.testing.assert_allclose(t.loc["mean"], t.loc[TASKS].mean())


def test_severity_correlation_uses_the_regressor(run):
    out = run.run_dir / "outputs" / "26_ci_severity_correlation"
    t = pd.read_csv(out / "severity_correlation.csv").set_index("map")
    assert {"MSE", "Regression maximization", "Deviation", "random"} == set(t.index)
    assert t["n"].eq(SMOKE["n_samples"]).all()
    # the summary is the mean of the per-image table; the cases have a global score of 1 at least
    per_image = pd.read_csv(out / "severity_correlation_per_image.csv")
    assert len(per_image) == SMOKE["n_samples"] and (per_image["global score"] >= 1).all()
    np.testing.assert_allclose(t["mean r"], per_image[list(t.index)].mean().to_numpy())
    # a uniform random map does not follow the severity map: over 128 x 128 pixels its r has a
    # standard deviation of about 1/128 (measured 0.003 and 0.013 per image)
    assert (per_image["random"].abs() < 0.05).all(), per_image["random"]

