"""Our own additions to the papers (notebooks/3*_add_*.ipynb), run at smoke size on phantoms."""

from __future__ import annotations

from pathlib import Path

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
    fractions = table[["latent_shift", "input_gradient", "ideal_classifier_shift", "autoencoder_pair"]]
    assert fractions.stack().between(0, 1).all()
    summary = pd.read_csv(out / "change_in_mask_summary.csv", index_col="finding")
    assert (summary["latent_shift"] > summary["mask_share"]).all()


def test_change_in_mask_notebook_is_phantom_only(tmp_path):
    from chexp.reproduce import execute_notebook, notebook_profiles, this_python_kernel

    source = REPO / "notebooks" / "30_add_change_in_mask.ipynb"
    assert notebook_profiles(source) == ("phantom",)  # chexp reproduce skips it for other profiles
    with this_python_kernel() as kernel:  # run directly (as papermill would): a clear refusal
        run = execute_notebook(source, tmp_path, {"profile": "cohen"}, kernel)
    assert not run.ok and "only supports the phantom profile" in run.error
