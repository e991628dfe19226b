"""Notebooks under the ``cohen`` profile (real radiographs, models chexp trains on them).

Runs the CheXplain-IBA notebooks that need only the BrixIA detectors and the global-score
regressor (about a minute of training on 2 cores, cached), at smoke size, and checks that the
pages name the profile and that the tables are about the BrixIA targets. Needs ``../shared/data``
(fails instead of skipping when ``CHEXP_REQUIRE_DATA=1``).
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
    t = pd.read_csv(run.run_dir / "outputs" / "23_ci_localization" / "table1_iou.csv")
    assert list(t["task"]) == [*TASKS, "mean"]
    values = t.drop(columns="task").to_numpy(float)
    assert np.isfinite(values).all() and ((values >= 0) & (values <= 1)).all()


def test_severity_correlation_uses_the_regressor(run):
    t = pd.read_csv(run.run_dir / "outputs" / "26_ci_severity_correlation" / "severity_correlation.csv")
    assert {"MSE", "Regression maximization", "Deviation"} <= set(t["map"])
    assert t["n"].eq(SMOKE["n_samples"]).all()
    assert t["mean r"].between(-1, 1).all()
