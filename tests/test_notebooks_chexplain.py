"""The CheXplain-IBA notebooks (20-26) run end to end at smoke size on the phantom profile and
write the figures and tables they promise, with values a wrong implementation would change.

The models they use are cached after the first training (phantom classifier, the phantom
severity regressor and Table 3's pair: see chexp.training and chexp.experiments). Bars on values
of trained models sit far from the values measured at this smoke size (given beside each bar),
so that a model trained on another CPU, with other rounding, passes too. Several checks compare
two tables of the same run: with ``n_samples = 1`` every notebook explains the same first
positive image of each task (``phantom-0``) with the same classifier and settings, so its maps,
and hence their IoU, must agree between notebooks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chexp.profiles import get_profile
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
    "20_ci_inverse_iba": ["fig1_iba_vs_inverse.png", "fig1_iba_vs_inverse.svg", "fig1_redundancy.csv",
                          "fig1_beta_sweep.csv"],
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


def _chance_iou(mask: np.ndarray) -> float:
    """Expected IoU of a random map with ``mask`` (top-p binarised, p = mask area): for a mask
    share ``s`` of the image, intersection ``s * p`` and union ``(2 - s) * p``."""
    share = float(np.asarray(mask, bool).mean())
    return share / (2 - share)


def _first_mask(task: str) -> np.ndarray:
    """The mask of the first positive image of ``task`` (the image the notebooks explain)."""
    return np.asarray(get_profile("phantom").samples(1, seed=0, task=task).masks[task][0], bool)


def test_iou_tables(run):
    _, outputs = run
    table = pd.read_csv(outputs / "23_ci_localization" / "table1_iou.csv", index_col=0)
    assert list(table.columns) == [
        "Grad-CAM", "Integrated gradients", "LRP", "Gradients", "IBA", "Inverse IBA", "Multi-layer IBA",
    ]
    assert list(table.index) == ["Cardiomegaly", "Mass", "mean"]
    # the mean row is the mean of the task rows, and the task rows the means of the per-sample table
    np.testing.assert_allclose(table.loc["mean"], table.drop(index="mean").mean())
    long = pd.read_csv(outputs / "23_ci_localization" / "iou_per_sample.csv")
    per_task = long.pivot_table(index="task", columns="method", values="IoU", aggfunc="mean")
    np.testing.assert_allclose(table.drop(index="mean"), per_task.loc[table.index[:-1], table.columns])
    # the maps find the finding: averaged over the seven methods, the IoU is several times that of
    # a random map (measured: Cardiomegaly 0.155 vs chance 0.028, Mass 0.29 vs chance 0.0057)
    for task in SMOKE["tasks"]:
        assert table.loc[task].mean() > 3 * _chance_iou(_first_mask(task)), task
    # Fig. 4's notebook explains the same image with the same IBA: the same IoU (IBA at the
    # setup's layer, block3, is the single-layer IBA column; Multi-layer IBA is the same method)
    fig4 = pd.read_csv(outputs / "25_ci_multilayer_iba" / "fig4_iou.csv", index_col=0)
    np.testing.assert_allclose(fig4["IBA"], fig4["IBA @ features.block3"])
    for task in SMOKE["tasks"]:
        row = fig4.loc[f"{task} (phantom-0)"]
        for method in ("IBA", "Multi-layer IBA"):
            assert row[method] == pytest.approx(table.loc[task, method], abs=1e-9), (task, method)
    np.testing.assert_allclose(fig4.loc["mean"], fig4.drop(index="mean").mean())


def _sides(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    left = mask.copy()
    left[:, mask.shape[1] // 2 :] = False
    return left, mask & ~left


def test_fig1_redundancy_table(run):
    from chexp.experiments.inverse import inverse_cases

    _, outputs = run
    table = pd.read_csv(outputs / "20_ci_inverse_iba" / "fig1_redundancy.csv")
    assert set(table["method"]) == {"IBA", "Inverse IBA"}
    assert table["case"].str.contains("both sides").any()
    v = _numbers(outputs / "20_ci_inverse_iba" / "fig1_redundancy.csv", ["IoU", "score", "score drop", "found left"])
    assert np.isfinite(v).all()
    # the classifier detects every finding it is asked to explain (measured: all >= 0.9997)
    assert (table["score"] > 0.5).all()
    assert table.groupby("case")["score"].nunique().eq(1).all()  # one image per case, whatever the method
    # two computations on the same top-p pixels agree: IoU = I / (2p - I), where the intersection I
    # is rebuilt from the share of each mask half that the map found (p = mask area)
    cases = {c["title"]: c for c in inverse_cases(get_profile("phantom"), n_redundant=SMOKE["n_samples"], seed=0)}
    assert set(table["case"]) == set(cases)
    for _, row in table.iterrows():
        mask = cases[row["case"]]["mask"]
        left, right = _sides(mask)
        inter = row["found left"] * left.sum() + row["found right"] * right.sum()
        assert row["IoU"] == pytest.approx(inter / (2 * mask.sum() - inter), rel=1e-9), (row["case"], row["method"])
    # the single-region case is the image notebook 23 explains: the same IoU
    iou23 = pd.read_csv(outputs / "23_ci_localization" / "table1_iou.csv", index_col=0)
    other = table[~table["case"].str.contains("both sides")]
    for _, row in other.iterrows():
        task = row["case"].split(" (")[0]
        assert row["IoU"] == pytest.approx(iou23.loc[task, row["method"]], abs=1e-9), (task, row["method"])
    # the beta sweep scores the same images
    sweep = pd.read_csv(outputs / "20_ci_inverse_iba" / "fig1_beta_sweep.csv")
    scores = table.groupby("case")["score"].first()
    np.testing.assert_allclose(sweep["score"], scores.loc[sweep["case"]].to_numpy())


def test_fig2_insertion_above_deletion(run):
    _, outputs = run
    table = pd.read_csv(outputs / "21_ci_insertion_deletion" / "fig2_auc.csv")
    assert table.shape[0] == 7 and (table["n"] == len(SMOKE["tasks"]) * SMOKE["n_samples"]).all()
    # every method's map ranks the pixels that matter first: inserting them in that order restores
    # the score much sooner than deleting them destroys it (measured: gaps 0.60-0.77)
    assert (table["insertion AUC"] - table["deletion AUC"] > 0.3).all(), table
    np.testing.assert_allclose(table["insertion - deletion"], table["insertion AUC"] - table["deletion AUC"])
    # the pooled table is the mean of the per-task table (the same number of images per task)
    per_task = pd.read_csv(outputs / "21_ci_insertion_deletion" / "fig2_auc_per_task.csv")
    assert (per_task["insertion AUC"] - per_task["deletion AUC"] > 0.3).all(), per_task  # measured >= 0.52
    pooled = per_task.groupby("method", sort=False)[["insertion AUC", "deletion AUC"]].mean()
    columns = ["insertion AUC", "deletion AUC"]
    np.testing.assert_allclose(table.set_index("method")[columns], pooled.loc[table["method"]])


def test_fig3_sensitivity_n_table(run):
    from chexp.metrics.perturbation import default_sensitivity_ns

    _, outputs = run
    table = pd.read_csv(outputs / "22_ci_regression_iba" / "fig3b_sensitivity_n.csv")
    assert set(table["map"]) == {"MSE", "Regression maximization", "Deviation", "random"}
    # the released sizes scaled to the 128 x 128 image (largest: 99.9 % of the pixels) at 4 points
    ns = default_sensitivity_ns(128 * 128, points=SMOKE["sensitivity_points"])
    assert list(ns) == [1, 25, 644, 16365]
    assert table.groupby("map")["n"].apply(list).map(lambda n: n == list(ns)).all()
    # every image gives a correlation at every size (a constant map or score would give none)
    assert (table["images"] == SMOKE["n_samples"]).all() and table["correlation"].notna().all()
    # the random map is scored by its own masks: its correlations differ from the IBA maps'
    by_map = table.pivot_table(index="n", columns="map", values="correlation")
    assert not np.allclose(by_map["random"], by_map["MSE"])
    # the summary is the mean over sizes of this table
    summary = pd.read_csv(outputs / "22_ci_regression_iba" / "fig3b_summary.csv", index_col=0).iloc[:, 0]
    np.testing.assert_allclose(summary, table.groupby("map", sort=False)["correlation"].mean().loc[summary.index])


def test_table3_both_models(run):
    _, outputs = run
    table = pd.read_csv(outputs / "24_ci_weighted_bce" / "table3_bce_vs_weighted.csv")
    assert list(table["model"]) == ["BCE", "Weighted BCE"]
    tasks = [c[: -len(" AUC")] for c in table.columns if c.endswith(" AUC") and c != "mean AUC"]
    assert len(tasks) == 5
    # both models learnt the findings (measured mean AUC 0.858 and 0.871 on the held-out phantoms)
    assert (table["mean AUC"] > 0.7).all(), table["mean AUC"]
    np.testing.assert_allclose(table["mean AUC"], table[[f"{t} AUC" for t in tasks]].mean(axis=1))
    np.testing.assert_allclose(table["mean IoU"], table[[f"{t} IoU" for t in tasks]].mean(axis=1))
    # the IoU columns are the means of the per-sample table of the same run
    long = pd.read_csv(outputs / "24_ci_weighted_bce" / "table3_iou_per_sample.csv")
    means = long.pivot_table(index="model", columns="task", values="IoU", aggfunc="mean")
    for _, row in table.iterrows():
        for task in tasks:
            assert row[f"{task} IoU"] == pytest.approx(means.loc[row["model"], task]), (row["model"], task)


def test_severity_correlation(run):
    _, outputs = run
    table = pd.read_csv(outputs / "26_ci_severity_correlation" / "severity_correlation.csv")
    assert set(table["map"]) == {"MSE", "Regression maximization", "Deviation", "random"}
    r = table.set_index("map")["mean r"]
    # Regression IBA's maps follow the zone-painted severity (measured 0.58-0.63; paper about 0.45);
    # a uniform random map does not (measured 0.0009: over 128 x 128 pixels its r has a standard
    # deviation of about 1/128)
    for name in ("MSE", "Regression maximization", "Deviation"):
        assert r[name] > 0.3, (name, r[name])
    assert abs(r["random"]) < 0.05, r["random"]
    # the summary is the mean of the per-image table
    per_image = pd.read_csv(outputs / "26_ci_severity_correlation" / "severity_correlation_per_image.csv")
    np.testing.assert_allclose(r.loc[r.index], per_image[list(r.index)].mean().to_numpy())
