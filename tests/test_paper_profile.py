"""The paper profile's samples on a tiny fake NIH / RSNA / SIIM folder in the datasets' layouts:
labels come from the Table 1 manifest (true negatives included), masks are the task's own boxes,
and missing images are all named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import skimage.io
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from chexp.cohen.paper import NIH_BOXES, load_paper_manifest
from chexp.cohen.paper_labels import balanced_rows, load_table1_manifest
from chexp.data.images import box_to_mask
from chexp.errors import DataUnavailableError, UnknownNameError
from chexp.profiles import PaperProfile

SIDE = 64  # fake images are small; the profile resizes them to 224


def _write_dicom(path: Path, pixels: np.ndarray) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


def _write_image(root: Path, dataset: str, image: str, value: int, side: int = SIDE) -> None:
    """One flat image in the dataset's standard layout (NIH PNG, RSNA / SIIM DICOM)."""
    pixels = np.full((side, side), value, np.uint16)
    if dataset == "NIH":
        (root / "NIH" / "images").mkdir(parents=True, exist_ok=True)
        skimage.io.imsave(root / "NIH" / "images" / image, pixels.astype(np.uint8), check_contrast=False)
    elif dataset == "RSNA":
        _write_dicom(root / "RSNA" / "stage_2_train_images" / f"{image}.dcm", pixels * 16)
    else:
        _write_dicom(root / "SIIM" / "dicom-images-train" / "study" / "series" / f"{image}.dcm", pixels * 16)


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
    _write_image(paper_data, "NIH", image, value=100, side=1024)
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
