"""The CheXplain-IBA notebooks (20-26) run end to end at smoke size on the phantom profile and
write the figures and tables they promise, with finite values in range.

The models they use are cached after the first training (phantom classifier, the phantom
severity regressor and Table 3's pair: see chexp.training and chexp.experiments).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chexp.reproduce import find_notebooks, reproduce

REPO = Path(__file__).resolve().parents[1]

SMOKE = {
    "n_samples": 1,
    "tasks": ["Cardiomegaly", "Mass"],
    "iba_steps": 3,
    "ig_steps": 8,
    "curve_points": 10,
    "sensitivity_points": 4,
    "sensitivity_masks": 4,
    "n_eval": 120,
    "n_statistics": 400,
    "betas": [3.0],
}

#: notebook -> files it must write (figures as .png and .svg, tables as .csv)
EXPECTED = {
    "20_ci_inverse_iba": ["fig1_iba_vs_inverse.png", "fig1_iba_vs_inverse.svg", "fig1_redundancy.csv", "fig1_beta_sweep.csv"],
    "21_ci_insertion_deletion": ["fig2_insertion_deletion.png", "fig2_auc.csv", "fig2_auc_per_task.csv"],
    "22_ci_regression_iba": ["fig3a_regression_iba.png", "fig3b_sensitivity_n.png", "fig3b_sensitivity_n.csv"],
    "23_ci_localization": ["table1_iou.csv", "table1_iou.png", "iou_per_sample.csv", "example_maps.png"],
    "24_ci_weighted_bce": ["table3_bce_vs_weighted.csv", "table3_bce_vs_weighted.png"],
    "25_ci_multilayer_iba": ["fig4_multilayer_iba.png", "fig4_iou.csv"],
    "26_ci_severity_correlation": ["severity_correlation.csv", "severity_maps.png"],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ci_run")
    result = reproduce("phantom", only="2*_ci_*", params=SMOKE, output_dir=out, build=False, progress=False)
    return result, out / "outputs"


def test_every_ci_notebook_is_listed():
    stems = {p.stem for p in find_notebooks(REPO / "notebooks", "2*_ci_*")}
    assert stems == set(EXPECTED)


def test_notebooks_succeed(run):
    result, _ = run
    assert [r.name for r in result.runs] == sorted(EXPECTED)
    assert not result.failed, result.summary()


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_outputs_exist_and_are_not_trivial(run, stem):
    _, outputs = run
    for name in EXPECTED[stem]:
        path = outputs / stem / name
        assert path.is_file(), f"{stem} did not write {name}"
        assert path.stat().st_size > (2000 if name.endswith(".png") else 20), f"{path} is (nearly) empty"


def _numbers(path: Path, columns: list[str]) -> np.ndarray:
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table.columns]
    assert not missing, f"{path.name} lacks columns {missing}: {list(table.columns)}"
    return table[columns].to_numpy(float)


def test_iou_tables_in_range(run):
    _, outputs = run
    table = pd.read_csv(outputs / "23_ci_localization" / "table1_iou.csv", index_col=0)
    assert list(table.columns) == ["Grad-CAM", "Integrated gradients", "LRP", "Gradients", "IBA", "Inverse IBA", "Multi-layer IBA"]
    assert list(table.index) == ["Cardiomegaly", "Mass", "mean"]
    values = table.to_numpy(float)
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    # the mean row is the mean of the task rows
    np.testing.assert_allclose(values[-1], values[:-1].mean(0))
    fig4 = pd.read_csv(outputs / "25_ci_multilayer_iba" / "fig4_iou.csv", index_col=0).to_numpy(float)
    assert np.isfinite(fig4).all() and (fig4 >= 0).all() and (fig4 <= 1).all()


def test_fig1_redundancy_table(run):
    _, outputs = run
    table = pd.read_csv(outputs / "20_ci_inverse_iba" / "fig1_redundancy.csv")
    assert set(table["method"]) == {"IBA", "Inverse IBA"}
    assert table["case"].str.contains("both sides").any()
    v = _numbers(outputs / "20_ci_inverse_iba" / "fig1_redundancy.csv", ["IoU", "score", "score drop", "found left"])
    assert np.isfinite(v).all()
    assert ((v[:, 0] >= 0) & (v[:, 0] <= 1)).all() and ((v[:, 1] >= 0) & (v[:, 1] <= 1)).all()
    assert (np.abs(v[:, 2]) <= 1).all()


def test_fig2_auc_in_range(run):
    _, outputs = run
    v = _numbers(outputs / "21_ci_insertion_deletion" / "fig2_auc.csv", ["insertion AUC", "deletion AUC"])
    assert v.shape == (7, 2)
    assert np.isfinite(v).all() and (v >= 0).all() and (v <= 1).all()


def test_fig3_sensitivity_correlations(run):
    _, outputs = run
    table = pd.read_csv(outputs / "22_ci_regression_iba" / "fig3b_sensitivity_n.csv")
    assert set(table["map"]) == {"MSE", "Regression maximization", "Deviation", "random"}
    r = table["correlation"].dropna().to_numpy()
    assert len(r) > 0 and (np.abs(r) <= 1 + 1e-9).all()


def test_table3_has_both_models(run):
    _, outputs = run
    table = pd.read_csv(outputs / "24_ci_weighted_bce" / "table3_bce_vs_weighted.csv")
    assert list(table["model"]) == ["BCE", "Weighted BCE"]
    v = table[["mean AUC", "mean IoU"]].to_numpy(float)
    assert np.isfinite(v).all() and (v >= 0).all() and (v <= 1).all()
    # both models learnt something on the held-out phantoms
    assert (v[:, 0] > 0.6).all()


def test_severity_correlation(run):
    _, outputs = run
    table = pd.read_csv(outputs / "26_ci_severity_correlation" / "severity_correlation.csv")
    assert set(table["map"]) == {"MSE", "Regression maximization", "Deviation", "random"}
    r = table.set_index("map")["mean r"]
    assert all(math.isfinite(v) and -1 <= v <= 1 for v in r)
