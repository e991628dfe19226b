"""CheXplain-IBA under the ``paper`` profile, without the real NIH images or weights: the NIH
training manifest (rebuilt byte for byte), the training images read from a fake NIH folder, the
IBA layers of the XRV-all DenseNet121 architecture (random weights), the paper's finding names
mapped to XRV-all's outputs, the stand-in of the paper's own models, and the notebooks' paper
defaults."""

from __future__ import annotations

import ast
import gzip
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from chexp.cohen.chexplain_rows import N_ROWS, NIH_TRAINING, build_training_rows, evaluation_images, training_rows
from chexp.cohen.paper import NIH_BOXES, SAMPLES, load_paper_manifest, packaged_file, write_manifest
from chexp.data.images import box_to_mask
from chexp.errors import DataUnavailableError, InvalidParameterError, UnknownNameError
from chexp.experiments.iba_setup import (
    brixia_stand_in,
    chexplain_profile,
    for_profile,
    make_setup,
    stand_in_note,
)
from chexp.experiments.inverse import inverse_cases
from chexp.experiments.regression import TRAINED_BY_PAPER, regression_cases
from chexp.models.xrv import densenet121_architecture
from chexp.profiles import PaperProfile, PhantomProfile
from chexp.profiles.paper import CHEXPLAIN_FINDINGS, CheXplainPaperProfile
from test_paper_profile import _write_image

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SIDE = 64  # fake images and the random-weight DenseNet run small


@pytest.fixture
def paper_data(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CHEXP_PAPER_DATA", str(tmp_path / "paper"))
    monkeypatch.setenv("CHEXP_CACHE_DIR", str(tmp_path / "cache"))  # IBA statistics of random weights go here
    return tmp_path / "paper"


# --------------------------------------------------------------------------------------------
# the NIH training manifest
# --------------------------------------------------------------------------------------------
def test_training_manifest_is_rebuilt_byte_for_byte(tmp_path):
    path = tmp_path / "rebuilt.csv.gz"
    write_manifest(build_training_rows(), path)
    with gzip.open(path) as rebuilt, gzip.open(NIH_TRAINING) as committed:
        assert rebuilt.read() == committed.read()


def test_training_manifest_is_patient_disjoint_from_every_evaluation_image():
    rows = training_rows()
    assert len(rows) == N_ROWS == 10_000 and rows["image"].is_unique
    assert list(rows.columns) == ["dataset", "image", "patientid", "view"] and (rows["dataset"] == "NIH").all()
    entries = pd.read_csv(packaged_file("Data_Entry_2017_v2020.csv.gz"), usecols=["Image Index", "Patient ID"])
    evaluated = evaluation_images()
    assert len(evaluated) == 8446 and set(load_paper_manifest(NIH_BOXES)["image"]) <= evaluated
    held_out = set(entries.loc[entries["Image Index"].isin(evaluated), "Patient ID"].astype(str))
    assert not set(rows["patientid"]) & held_out
    assert set(rows["view"]) == {"PA", "AP"}
    assert training_rows(3).equals(rows.iloc[:3])  # the first n rows: a random sample of any size
    with pytest.raises(InvalidParameterError, match="between 0 and 10000"):
        training_rows(N_ROWS + 1)


def test_training_images_are_the_manifest_rows_in_order(paper_data):
    rows = training_rows(4)
    for k, image in enumerate(rows["image"]):
        _write_image(paper_data, "NIH", image, value=20 + 40 * k, side=SIDE)
    images = PaperProfile().training_images(4)
    assert images.shape == (4, 1, 224, 224) and images.dtype == torch.float32
    levels = images.flatten(1).mean(1).numpy()
    np.testing.assert_allclose(levels, [(2 * (20 + 40 * k) / 255 - 1) * 1024 for k in range(4)], atol=1.0)


def test_training_images_name_every_missing_file_and_need_the_folder(paper_data, monkeypatch):
    rows = training_rows(5)
    _write_image(paper_data, "NIH", rows["image"].iloc[0], value=50, side=SIDE)
    with pytest.raises(DataUnavailableError) as err:
        PaperProfile().training_images(5)
    message = str(err.value)
    assert "4 NIH image(s) missing" in message and all(image in message for image in rows["image"].iloc[1:])
    monkeypatch.delenv("CHEXP_PAPER_DATA")
    with pytest.raises(DataUnavailableError, match="CHEXP_PAPER_DATA"):
        PaperProfile().training_images(1)


# --------------------------------------------------------------------------------------------
# layers, targets and the CheXplain profile
# --------------------------------------------------------------------------------------------
def test_iba_sits_at_dense_block_3_and_multilayer_at_blocks_1_to_3(paper_data):
    model = densenet121_architecture()
    model.input_size = None  # the architecture at 64 px, to keep the test fast
    images = torch.randn(6, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0)).clamp(-3, 3) * 300
    setup = make_setup(CheXplainPaperProfile(), model, n_statistics=6, images=lambda n: images[:n])
    assert setup.layer == "model.features.denseblock3"
    assert setup.layers == tuple(f"model.features.denseblock{k}" for k in (1, 2, 3))
    # the statistics are those of each block's output (not of the transition after it): DenseNet121's
    # blocks end with 256, 512, 1024 channels at 1/4, 1/8, 1/16 of the input
    for k, (channels, side) in enumerate([(256, SIDE // 4), (512, SIDE // 8), (1024, SIDE // 16)], start=1):
        stats = setup.statistics[f"model.features.denseblock{k}"]
        assert stats.shape == (channels, side, side) and stats.count == 6
    features = model.model.features
    with torch.no_grad():
        x = features.pool0(features.relu0(features.norm0(features.conv0(images))))
        x = features.transition1(features.denseblock1(x))
        x = features.denseblock3(features.transition2(features.denseblock2(x)))
    torch.testing.assert_close(setup.statistics[setup.layer].mean(), x.mean(0), rtol=1e-4, atol=1e-4)


def test_paper_findings_map_to_xrv_all_outputs():
    targets = densenet121_architecture().targets
    assert list(CHEXPLAIN_FINDINGS) == sorted(load_paper_manifest(SAMPLES).query(
        "selection == 'chexplain-table1'")["task"].unique())
    assert CHEXPLAIN_FINDINGS["Infiltrate"] == "Infiltration"
    profile = chexplain_profile("paper", train_device="cpu")
    assert isinstance(profile, CheXplainPaperProfile) and profile.name == "paper"
    assert profile.tasks == tuple(CHEXPLAIN_FINDINGS.values()) and set(profile.tasks) <= set(targets)
    assert profile.train_device == "cpu"
    assert type(chexplain_profile("phantom")) is PhantomProfile
    with pytest.raises(UnknownNameError):
        chexplain_profile("nih")


def test_chexplain_samples_are_the_box_images_of_the_finding(paper_data):
    table = load_paper_manifest(SAMPLES).query("selection == 'chexplain-table1' and task == 'Infiltrate'")
    for k, image in enumerate(table["image"]):
        _write_image(paper_data, "NIH", image, value=10 + k, side=1024 if k < 3 else SIDE)
    profile = CheXplainPaperProfile()
    chosen = table.sample(n=3, random_state=4)["image"].tolist()
    s = profile.samples(3, seed=4, task="Infiltration")
    assert s.ids == chosen and list(s.masks) == ["Infiltration"] and s.images.shape == (3, 1, 224, 224)
    k = profile.tasks.index("Infiltration")
    assert (s.labels[:, k] == 1).all()
    boxes = load_paper_manifest(NIH_BOXES)
    for i, image in enumerate(chosen):
        own = boxes[(boxes["image"] == image) & (boxes["task"] == "Infiltrate")]
        shape = (1024, 1024) if image in table["image"].iloc[:3].tolist() else (SIDE, SIDE)
        expected = np.zeros((224, 224), bool)
        for r in own.itertuples():
            expected |= box_to_mask((r.x, r.y, r.w, r.h), shape, 224)
        np.testing.assert_array_equal(s.masks["Infiltration"][i], expected)
        other = boxes.loc[(boxes["image"] == image), "task"].map(CHEXPLAIN_FINDINGS)
        assert set(np.array(profile.tasks)[s.labels[i] == 1]) == set(other)
    assert len(profile.samples(500, task="Infiltration")) == len(table) == 123  # every box image
    with pytest.raises(UnknownNameError, match="CheXplain-IBA task"):
        profile.samples(1, task="Infiltrate")  # the box name: XRV-all calls it Infiltration


def test_fig1_paper_case_is_a_cardiomegaly_box_across_the_midline(paper_data):
    table = load_paper_manifest(SAMPLES).query("selection == 'chexplain-table1' and task == 'Cardiomegaly'")
    for image in table["image"]:
        _write_image(paper_data, "NIH", image, value=90, side=1024)  # the boxes' pixels
    cases = inverse_cases(CheXplainPaperProfile(), n_redundant=1)
    assert len(cases) == 1 and cases[0]["task"] == "Cardiomegaly" and cases[0]["redundant"]
    mask = cases[0]["mask"]
    assert mask[:, :112].sum() >= 0.25 * mask.sum() and mask[:, 112:].sum() >= 0.25 * mask.sum()


# --------------------------------------------------------------------------------------------
# stand-ins and per-profile defaults
# --------------------------------------------------------------------------------------------
def test_paper_runs_the_brixia_parts_on_the_cohen_stand_in():
    paper = chexplain_profile("paper", train_device="cpu")
    used = brixia_stand_in(paper)
    assert used.name == "cohen" and used.train_device == "cpu"
    assert "Stand-in under the paper profile" in stand_in_note(paper, used, TRAINED_BY_PAPER)
    phantom = PhantomProfile()
    assert brixia_stand_in(phantom) is phantom and stand_in_note(phantom, phantom, TRAINED_BY_PAPER) == ""
    with pytest.raises(InvalidParameterError, match="give n"):
        regression_cases(phantom, None)


def test_for_profile_reads_a_per_profile_value_or_a_plain_one():
    paper, phantom = CheXplainPaperProfile(), PhantomProfile()
    sizes = {"phantom": 3, "cohen": 3, "paper": 180}
    assert for_profile(sizes, paper) == 180 and for_profile(sizes, phantom) == 3
    assert for_profile(1, paper) == 1 and for_profile(["Mass"], paper) == ["Mass"]
    with pytest.raises(UnknownNameError, match="paper"):
        for_profile({"phantom": 3}, paper)


def _parameters(stem: str) -> tuple[dict[str, object], list[str]]:
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}
    return values, nb.metadata["chexp"]["profiles"]


@pytest.mark.parametrize("stem", ["20_ci_inverse_iba", "21_ci_insertion_deletion", "22_ci_regression_iba",
                                  "23_ci_localization", "24_ci_weighted_bce", "25_ci_multilayer_iba",
                                  "26_ci_severity_correlation"])
def test_notebooks_run_under_paper_with_the_model_layers_and_phantom_defaults_kept(stem):
    params, profiles = _parameters(stem)
    assert profiles == ["phantom", "cohen", "paper"]
    assert params["layer"] is None  # the model family's: dense block 3 for XRV-all, block3 for chexp's CNN
    phantom = {name: for_profile(value, PhantomProfile()) for name, value in params.items()}
    assert phantom["n_statistics"] == 400  # the phantom book is unchanged


def test_notebook_paper_defaults_are_the_papers_sizes():
    boxes_per_finding = load_paper_manifest(SAMPLES).query("selection == 'chexplain-table1'").groupby("task").size()
    paper = CheXplainPaperProfile()
    for stem in ("21_ci_insertion_deletion", "23_ci_localization"):  # every box image of each finding
        params, _ = _parameters(stem)
        assert for_profile(params["n_samples"], paper) >= boxes_per_finding.max() == 180
        assert for_profile(params["n_statistics"], paper) == 800  # the released code's IBA estimate
    assert for_profile(_parameters("21_ci_insertion_deletion")[0]["curve_points"], paper) == 224 * 224 // 25
    params, _ = _parameters("25_ci_multilayer_iba")
    assert for_profile(params["tasks"], paper) == ["Mass", "Cardiomegaly"]  # Fig. 4
    assert (for_profile(params["normalize"], paper), for_profile(params["thresholds"], paper)) == ("l2", 0.006)
    params, _ = _parameters("22_ci_regression_iba")
    assert (for_profile(params["sensitivity_points"], paper), for_profile(params["sensitivity_masks"], paper)) == (
        50, 30)


def test_chexplain_check_needs_xrv_all_and_the_data_folder_not_the_autoencoder(paper_data, monkeypatch):
    def no_autoencoder(self):
        raise AssertionError("CheXplain-IBA loads no autoencoder")

    architecture = densenet121_architecture()

    monkeypatch.setattr(CheXplainPaperProfile, "classifier", lambda self, output="probability": architecture)
    monkeypatch.setattr(CheXplainPaperProfile, "autoencoder", no_autoencoder)
    CheXplainPaperProfile().check()
    monkeypatch.delenv("CHEXP_PAPER_DATA")
    with pytest.raises(DataUnavailableError, match="CHEXP_PAPER_DATA"):
        CheXplainPaperProfile().check()
