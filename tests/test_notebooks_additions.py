"""Our own additions to the papers (notebooks/3*_add_*.ipynb), run at smoke size on phantoms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chexp.reproduce import reproduce

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("add_notebooks")
    return reproduce(profile="phantom", only="3*_add_*", params={"n_samples": 3}, output_dir=out,
                     build=False, progress=False)


def test_change_in_mask_notebook(run):
    runs = {r.name: r for r in run.runs}
    assert runs["30_add_change_in_mask"].ok, runs["30_add_change_in_mask"].error
    out = run.run_dir / "outputs" / "30_add_change_in_mask"
    for name in ("in_mask_fractions", "change_maps_cardiomegaly", "change_maps_mass"):
        assert (out / f"{name}.png").stat().st_size > 2000
    table = pd.read_csv(out / "change_in_mask.csv")
    assert sorted(table["finding"].unique()) == ["Cardiomegaly", "Mass"]
    assert (table.groupby("finding").size() == 3).all()
    # the paper's rule: at the lower bound the prediction on the reconstruction fell by about 30 %
    # (search tolerance 10 % of that; measured 0.71-0.73 of it)
    assert (table["prediction_lower"] / table["prediction"]).between(0.6, 0.8).all()
    # growing the mask (dilations by 2, 4, 8 px) only ever adds change
    grown = table[["latent_shift", "latent_shift_dilated_2", "latent_shift_dilated_4", "latent_shift_dilated_8"]]
    assert (np.diff(grown.to_numpy(), axis=1) >= 0).all()
    # the summary is the mean of the per-case table
    summary = pd.read_csv(out / "change_in_mask_summary.csv", index_col="finding")
    means = table.drop(columns="index").groupby("finding").mean()
    np.testing.assert_allclose(summary.loc[means.index, means.columns], means)
    # measured (means, Cardiomegaly / Mass): input gradient 0.19 / 0.07, latent shift 0.25 / 0.14,
    # ideal classifier's shift 0.74 / 0.52, autoencoder pair 0.85 / 0.63, mask share 0.049 / 0.0053.
    # The change concentrates in the finding, 3x the mask share at least (measured 5.1 / 26); more
    # than the classifier's gradient; less than the autoencoder allows (the orderings of
    # tests/test_latentshift_phantom.py)
    assert (summary["latent_shift"] > 3 * summary["mask_share"]).all()
    assert (summary["input_gradient"] < summary["latent_shift"]).all()
    assert (summary["latent_shift"] < summary["ideal_classifier_shift"]).all()
    assert (summary["ideal_classifier_shift"] <= summary["autoencoder_pair"]).all()


def test_change_in_mask_notebook_is_phantom_only(tmp_path):
    from chexp.reproduce import execute_notebook, notebook_profiles, this_python_kernel

    source = REPO / "notebooks" / "30_add_change_in_mask.ipynb"
    assert notebook_profiles(source) == ("phantom",)  # chexp reproduce skips it for other profiles
    with this_python_kernel() as kernel:  # run directly (as papermill would): a clear refusal
        run = execute_notebook(source, tmp_path, {"profile": "cohen"}, kernel)
    assert not run.ok and "only supports the phantom profile" in run.error


def test_shortcut_notebook(run):
    runs = {r.name: r for r in run.runs}
    assert runs["31_add_shortcut"].ok, runs["31_add_shortcut"].error
    out = run.run_dir / "outputs" / "31_add_shortcut"
    for name in ("shortcut_reliance", "shortcut_mass_fractions", "shortcut_tracking", "shortcut_example_maps",
                 "shortcut_frames_shortcut", "shortcut_frames_clean"):
        assert (out / f"{name}.png").stat().st_size > 2000, name
    for name in ("shortcut", "clean"):
        assert (out / f"shortcut_latent_shift_{name}.gif").stat().st_size > 2000
    # the planted shortcut is real: removing the device lowers the shortcut model's Pneumothorax
    # logit, not the clean model's (measured at n_samples=12: 2.58 vs -0.54 logit)
    summary = pd.read_csv(out / "shortcut_reliance_summary.csv", header=[0, 1], index_col=0)
    effect = summary[("device_effect", "mean")]
    assert effect["shortcut"] > effect["clean"] + 1.0
    reveal = pd.read_csv(out / "shortcut_reveal.csv")
    assert sorted(reveal["method"]) == sorted(["Latent Shift", "Grad-CAM", "Integrated gradients", "LRP", "Gradients",
                                               "IBA", "Inverse IBA", "Multi-layer IBA"])
    shares = reveal[["device (shortcut)", "device (clean)", "finding (shortcut)", "finding (clean)"]]
    assert ((shares >= 0) & (shares <= 1)).all().all()
    # the difference column is the shortcut model's device share minus the clean model's
    np.testing.assert_allclose(reveal["difference"], reveal["device (shortcut)"] - reveal["device (clean)"])
