"""The paper profile's samples on a tiny NIH / RSNA / SIIM folder in the datasets' layouts
(written by the plumbing fixture's writers, :mod:`chexp.cohen.paper_fixture`): labels come from
the Table 1 manifest (true negatives included), masks are the task's own boxes, and missing
images are all named. ``check()`` names every missing weight file at once; the fixture's weights
load through the real loaders (JF Healthcare's from ``CHEXP_WEIGHTS_DIR``) and say they are the
fixture."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from chexp.cohen.paper import LAYOUTS, NIH_BOXES, PaperImageFolder, load_paper_manifest
from chexp.cohen.paper_fixture import (
    LABEL,
    MARKER,
    SIDE,
    fixture_rows,
    fixture_warning,
    write_image,
    write_images,
    write_weights,
)
from chexp.cohen.paper_labels import balanced_rows, load_table1_manifest
from chexp.data.images import box_to_mask
from chexp.errors import ChexpWarning, DataUnavailableError, UnknownNameError, WeightsUnavailableError
from chexp.models.xrv import FIXTURE_NOTE, PRETRAINED, load_jfhealthcare
from chexp.profiles import PaperProfile

SMALL = 64  # flat test images are small; the profile resizes them to 224


def _write_image(root: Path, dataset: str, image: str, value: int, side: int = SMALL) -> None:
    """One flat image in the dataset's standard layout (NIH PNG, RSNA / SIIM DICOM)."""
    write_image(root, dataset, image, np.full((side, side), value, np.uint8))


@pytest.fixture
def paper_data(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CHEXP_PAPER_DATA", str(tmp_path))
    return tmp_path


def test_balanced_draw_uses_real_labels_and_true_negatives(paper_data):
    profile = PaperProfile()
    expected = balanced_rows(load_table1_manifest(), profile.tasks, 12, seed=5)
    for k, row in enumerate(expected.itertuples()):
        _write_image(paper_data, row.dataset, row.image, value=10 + 10 * k)
    s = profile.samples(12, seed=5)
    assert s.images.shape == (12, 1, 224, 224) and s.targets == profile.tasks and s.masks == {}
    assert s.ids == expected["image"].tolist()
    # each row labelled for the task it was drawn for (from the manifest), NaN elsewhere
    for i, row in enumerate(expected.itertuples()):
        k = profile.tasks.index(row.task)
        assert s.labels[i, k] == row.label
        assert np.isnan(np.delete(s.labels[i], k)).all()
    # one true negative and one positive per task
    assert (np.nansum(s.labels == 0, axis=0) == 1).all() and (np.nansum(s.labels == 1, axis=0) == 1).all()
    # the image read is the file of that row (flat value 10 + 10 k, in [-1024, 1024])
    levels = s.images.flatten(1).mean(1).numpy()
    assert np.all(np.diff(levels[:8]) > 0)  # the NIH PNGs, brighter row by row


def test_task_samples_have_their_own_finding_box(paper_data):
    boxes = load_paper_manifest(NIH_BOXES)
    iou = load_table1_manifest().query("selection == 'iou' and task == 'Effusion'")
    several = boxes.groupby("image")["task"].nunique()
    image = next(i for i in iou["image"] if several.get(i, 1) > 1)  # boxes of Effusion and another finding
    _write_image(paper_data, "NIH", image, value=100, side=SIDE)
    profile = PaperProfile()
    rows = iou.reset_index(drop=True)
    seed = next(s for s in range(1000) if rows.sample(n=1, random_state=s)["image"].iloc[0] == image)
    s = profile.samples(1, seed=seed, task="Effusion")
    assert s.ids == [image] and list(s.masks) == ["Effusion"]
    k = profile.tasks.index("Effusion")
    assert s.labels[0, k] == 1 and np.isnan(np.delete(s.labels[0], k)).all()
    own = boxes[(boxes["image"] == image) & (boxes["task"] == "Effusion")]
    expected = np.zeros((224, 224), bool)
    for r in own.itertuples():
        expected |= box_to_mask((r.x, r.y, r.w, r.h), (1024, 1024), 224)
    np.testing.assert_array_equal(s.masks["Effusion"][0], expected)


def test_missing_images_are_all_named_and_data_folder_required(paper_data, monkeypatch):
    profile = PaperProfile()
    expected = balanced_rows(load_table1_manifest(), profile.tasks, 6, seed=0)
    nih = expected[expected["dataset"] == "NIH"]
    _write_image(paper_data, "NIH", nih["image"].iloc[0], value=50)
    with pytest.raises(DataUnavailableError) as err:
        profile.samples(6, seed=0)
    message = str(err.value)
    assert f"{len(nih) - 1} NIH image(s) missing" in message
    assert all(image in message for image in nih["image"].iloc[1:])
    assert "download them" in message and "RSNA image folder" in message and "SIIM image folder" in message
    with pytest.raises(UnknownNameError, match="paper task"):
        profile.samples(1, task="Hernia")
    monkeypatch.delenv("CHEXP_PAPER_DATA")
    with pytest.raises(DataUnavailableError, match="CHEXP_PAPER_DATA"):
        profile.samples(2)


def _offline(*args, **kwargs):
    raise ConnectionError("no network")


def test_check_names_every_missing_weight_file_at_once(tmp_path, monkeypatch):
    """All four files of the profile (three classifiers of Gifsplanation, the autoencoder) are
    checked, and every missing one is named with its URL and path (main checked one classifier)."""
    monkeypatch.setenv("CHEXP_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr("pooch.retrieve", _offline)
    with pytest.raises(WeightsUnavailableError) as err:
        PaperProfile().check()
    message = str(err.value)
    assert message.startswith("4 pretrained weight file(s) missing")
    for weights in PRETRAINED.values():
        assert weights.url in message and str(tmp_path / weights.filename) in message


@pytest.fixture(scope="module")
def fixture_weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_weights(folder, seed=0)
    return folder


def test_fixture_weights_load_with_the_real_loaders_and_say_so(fixture_weights, tmp_path, monkeypatch):
    """JF Healthcare too reads CHEXP_WEIGHTS_DIR (torchxrayvision's own loader hard-codes
    ~/.torchxrayvision and downloads ImageNet weights first): HOME is empty and the network is off."""
    monkeypatch.setenv("CHEXP_WEIGHTS_DIR", str(fixture_weights))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setattr("pooch.retrieve", _offline)
    for weights in PRETRAINED.values():
        assert FIXTURE_NOTE in (fixture_weights / (weights.filename + ".sha256")).read_text()
    with pytest.warns(ChexpWarning, match="plumbing fixture") as record:
        PaperProfile().check()
    assert len(record) == len(PRETRAINED)
    with pytest.warns(ChexpWarning, match="jfhealthcare"):
        jf = load_jfhealthcare(output="logit")
    saved = torch.load(fixture_weights / PRETRAINED["jfhealthcare"].filename, weights_only=True)
    loaded = jf.model.model.module.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert list(jf.targets) == ["Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Effusion"]
    x = torch.linspace(-1024, 1024, 64 * 64).reshape(1, 1, 64, 64)
    assert jf(x).shape == (1, 5) and torch.isfinite(jf(x)).all()
    assert not (tmp_path / ".torchxrayvision").exists()


def test_fixture_images_follow_the_layouts_and_give_masks(tmp_path, monkeypatch):
    """The fixture's rows cover every Table 1 IoU positive (any n, any seed) and the balanced
    draws of the smoke sizes; its 1024-pixel files are found and read in each dataset's layout,
    with the task's own expert mask, and the profile warns that the folder is the fixture."""
    rows = fixture_rows(n_samples=1, n_draw=12, seed=0)
    table = load_table1_manifest()
    assert set(table.loc[table["selection"] == "iou", "image"]) <= set(rows["image"])
    assert set(balanced_rows(table, PaperProfile.tasks, 12, seed=3)["image"]) <= set(rows["image"])
    assert not rows.duplicated().any()
    one = rows.groupby("dataset").head(1)
    assert sorted(one["dataset"]) == sorted(LAYOUTS)
    assert write_images(tmp_path, one) == 3
    assert (tmp_path / "NIH" / "images" / one.loc[one["dataset"] == "NIH", "image"].iloc[0]).is_file()
    assert len(list((tmp_path / "RSNA" / "stage_2_train_images").glob("*.dcm"))) == 1
    (siim,) = (tmp_path / "SIIM" / "dicom-images-train").rglob("*.dcm")
    assert len(siim.relative_to(tmp_path / "SIIM" / "dicom-images-train").parts) == 3  # study/series/image
    for r in one.itertuples():
        image = PaperImageFolder(tmp_path / r.dataset, r.dataset).image(r.image)
        assert image.shape == (1, 224, 224) and image.std() > 10  # a phantom, not a flat image
    iou = table[(table["selection"] == "iou") & (table["task"] == "Pneumothorax")].reset_index(drop=True)
    write_images(tmp_path, iou.head(1)[["dataset", "image"]])
    seed = next(s for s in range(1000) if iou.sample(n=1, random_state=s)["image"].iloc[0] == iou["image"][0])
    monkeypatch.setenv("CHEXP_PAPER_DATA", str(tmp_path))
    s = PaperProfile().samples(1, seed=seed, task="Pneumothorax")  # the SIIM RLE needs the 1024-pixel side
    assert s.ids == [iou["image"][0]] and s.masks["Pneumothorax"][0].any()
    (tmp_path / MARKER).write_text(LABEL)
    with pytest.warns(ChexpWarning, match="plumbing fixture"):
        fixture_warning(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixture_warning(tmp_path / "NIH")  # no marker: silent


def test_cli_writes_the_fixture_where_asked(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(folder, n_samples, n_draw, seed):
        calls.append((Path(folder), n_samples, n_draw, seed))
        return {"data": Path(folder) / "data", "weights": Path(folder) / "weights"}

    monkeypatch.setattr("chexp.cohen.paper_fixture.write_paper_fixture", fake)
    from chexp.cli import main

    assert main(["paper-fixture", str(tmp_path), "--n-samples", "2", "--n-draw", "24", "--seed", "3"]) == 0
    assert calls == [(tmp_path, 2, 24, 3)]
    out = capsys.readouterr().out
    assert LABEL in out and f"CHEXP_PAPER_DATA={tmp_path.resolve() / 'data'}" in out
    assert f"CHEXP_WEIGHTS_DIR={tmp_path.resolve() / 'weights'}" in out
