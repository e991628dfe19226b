"""NIH / RSNA / SIIM manifests of the paper profile: RLE, boxes through crop and resize, samples,
the Gifsplanation Table 1 manifest and its real labels, the reader-study list and the folder loader."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import skimage.io
import torchxrayvision as xrv

from chexp.cohen.paper import (
    GIFSPLANATION_TASKS,
    NIH_BOXES,
    RSNA_BOXES,
    SAMPLES,
    SIIM_MASKS,
    PaperImageFolder,
    chexplain_table1_samples,
    decode_siim_rle,
    encode_siim_rle,
    gifsplanation_table1_samples,
    load_paper_manifest,
    packaged_file,
    reader_study_samples,
    siim_rle_table,
    write_manifest,
)
from chexp.cohen.paper_labels import (
    COLUMNS,
    TABLE1,
    balanced_rows,
    build_table1_manifest,
    load_table1_manifest,
    released_auc_draw,
)
from chexp.data.images import box_to_mask, center_crop_resize, read_image
from chexp.errors import DataUnavailableError, InvalidParameterError, UnknownNameError


@pytest.fixture(scope="module")
def manifests() -> dict[str, pd.DataFrame]:
    out = {name: load_paper_manifest(p) for name, p in
           {"nih": NIH_BOXES, "rsna": RSNA_BOXES, "siim": SIIM_MASKS, "samples": SAMPLES}.items()}
    out["table1"] = load_table1_manifest()
    return out


@pytest.fixture(scope="module")
def packaged_labels() -> dict[str, pd.DataFrame]:
    """The packaged label CSVs, read here independently of chexp's readers: image -> finding
    list / target / RLE rows, and the views."""
    nih = pd.read_csv(packaged_file("Data_Entry_2017_v2020.csv.gz"))
    rsna = pd.read_csv(packaged_file("kaggle_stage_2_train_labels.csv.zip"))
    headers = pd.read_csv(packaged_file("kaggle_stage_2_train_images_dicom_headers.csv.gz"))
    siim = pd.read_csv(packaged_file("siim-pneumothorax-train-rle.csv.gz"))
    return {"nih": nih, "rsna": rsna, "rsna_headers": headers, "siim": siim}


# --- SIIM RLE ------------------------------------------------------------------------------
def test_rle_hand_made_example():
    # 4 rows x 3 columns, column-major flat index = column * 4 + row.
    # "1 2 3 1": skip 1 -> pixels 1, 2 (column 0, rows 1-2); skip 3 from pixel 3 -> pixel 6 (column 1, row 2)
    mask = decode_siim_rle("1 2 3 1", height=4, width=3)
    expected = np.zeros((4, 3), bool)
    expected[1, 0] = expected[2, 0] = expected[2, 1] = True
    np.testing.assert_array_equal(mask, expected)
    assert encode_siim_rle(expected) == "1 2 3 1"
    assert not decode_siim_rle("-1", 4, 3).any()
    with pytest.raises(ValueError, match="leaves"):
        decode_siim_rle("10 5", 4, 3)
    with pytest.raises(ValueError, match="pairs"):
        decode_siim_rle("1 2 3", 4, 3)


def test_rle_round_trip_real_masks(manifests):
    for rle in manifests["siim"]["rle"].head(5):
        mask = decode_siim_rle(rle)
        assert mask.shape == (1024, 1024) and 0 < mask.sum() < mask.size
        assert encode_siim_rle(mask) == " ".join(rle.split())


def test_rle_round_trip_random():
    rng = np.random.default_rng(0)
    mask = rng.random((17, 9)) > 0.6
    np.testing.assert_array_equal(decode_siim_rle(encode_siim_rle(mask), 17, 9), mask)


# --- boxes through the image's crop and resize ---------------------------------------------
def test_box_to_mask_matches_crop_and_resize_analytically():
    # a 100 x 200 image: the center crop keeps columns 50..149, the resize halves 100 -> 50
    mask = box_to_mask((60, 10, 20, 30), (100, 200), 50)
    expected = np.zeros((50, 50), bool)
    expected[5:20, 5:15] = True
    np.testing.assert_array_equal(mask, expected)


def test_box_mask_aligned_with_image_pixels(tmp_path):
    img = np.full((120, 160), 20, np.uint8)
    img[30:70, 50:90] = 230  # a bright box at x=50, y=30, w=40, h=40
    path = tmp_path / "x.png"
    skimage.io.imsave(path, img, check_contrast=False)
    image = read_image(path, size=60)[0]
    mask = box_to_mask((50, 30, 40, 40), img.shape, 60)
    bright = image > 0
    assert (bright & mask).sum() / (bright | mask).sum() > 0.9


# --- committed manifests and samples ------------------------------------------------------
def test_committed_box_tables(manifests):
    nih, rsna = manifests["nih"], manifests["rsna"]
    assert len(nih) == 984 and nih["image"].nunique() == 880
    per_task = nih.groupby("task").size()[["Atelectasis", "Cardiomegaly", "Effusion", "Mass"]]
    assert per_task.tolist() == [180, 146, 153, 85]
    assert (nih[["w", "h"]] > 0).all(axis=None) and (nih[["x", "y"]] >= 0).all(axis=None)
    assert ((nih["x"] + nih["w"]) <= 1024).all() and ((nih["y"] + nih["h"]) <= 1024).all()
    assert rsna["image"].nunique() == 6012 and (rsna["task"] == "Lung Opacity").all()


def test_gifsplanation_table1_samples_reproducible(manifests):
    table1 = manifests["table1"]
    committed = table1[table1["selection"] == "iou"].reset_index(drop=True)
    assert committed.groupby("task").size().to_dict() == {t: 80 for t in GIFSPLANATION_TASKS}
    assert not committed.duplicated(["task", "image"]).any()
    siim_full = siim_rle_table()  # sampled from every positive SIIM image, as the builder does
    again = gifsplanation_table1_samples(manifests["nih"], manifests["rsna"], siim_full, seed=0)
    pd.testing.assert_frame_equal(again[["task", "image"]], committed[["task", "image"]])
    other = gifsplanation_table1_samples(manifests["nih"], manifests["rsna"], siim_full, seed=1)
    assert not other["image"].equals(again["image"])
    nih = manifests["nih"]
    for row in committed[committed["dataset"] == "NIH"].itertuples():
        assert ((nih["image"] == row.image) & (nih["task"] == row.task)).any()
    siim_ids = set(manifests["siim"]["image"])
    assert set(committed.loc[committed["dataset"] == "SIIM", "image"]) <= siim_ids


def test_table1_manifest_is_balanced_with_real_labels(manifests, packaged_labels):
    table1 = manifests["table1"]
    assert tuple(table1.columns) == COLUMNS
    auc, iou = table1[table1["selection"] == "auc"], table1[table1["selection"] == "iou"]
    # the paper's AUC sample: 2048 per task, half true negatives, in the released draw order
    assert auc.groupby(["task", "label"]).size().to_dict() == {
        (t, lab): 1024 for t in GIFSPLANATION_TASKS for lab in (0, 1)}
    for _, rows in auc.groupby("task"):
        assert rows["draw"].tolist() == list(range(2048)) and rows["label"].tolist() == [0] * 1024 + [1] * 1024
    assert (iou["label"] == 1).all() and (iou["annotation"] != "").all()
    # the released code's datasets keep PA views for NIH and RSNA
    assert set(auc.loc[auc["dataset"].isin(["NIH", "RSNA"]), "view"]) == {"PA"}
    # only SIIM positives repeat: an image with several RLE segments has several rows to draw from
    repeated = auc[auc.duplicated(["task", "image"], keep=False)]
    assert set(repeated["dataset"]) == {"SIIM"} and (repeated["label"] == 1).all()

    # labels agree with the packaged CSVs, read here without chexp's readers
    findings = packaged_labels["nih"].set_index("Image Index")["Finding Labels"].str.split("|").to_dict()
    nih_rows = table1[table1["dataset"] == "NIH"]
    listed = [task in findings[image] for image, task in zip(nih_rows["image"], nih_rows["task"], strict=True)]
    np.testing.assert_array_equal(listed, nih_rows["label"].to_numpy() == 1)
    rsna_target = packaged_labels["rsna"].groupby("patientId")["Target"].agg(["min", "max"])
    assert (rsna_target["min"] == rsna_target["max"]).all()  # one target per patient
    rsna = table1[table1["dataset"] == "RSNA"]
    np.testing.assert_array_equal(rsna_target.loc[rsna["image"], "max"].to_numpy(), rsna["label"].to_numpy())
    siim = packaged_labels["siim"]
    positive = set(siim.loc[siim[" EncodedPixels"].str.strip() != "-1", "ImageId"])
    siim_rows = table1[table1["dataset"] == "SIIM"]
    assert set(siim_rows["image"]) <= set(siim["ImageId"])
    np.testing.assert_array_equal(siim_rows["image"].isin(positive).to_numpy(), siim_rows["label"].to_numpy() == 1)

    # no negative carries the finding, and every positive of a localisation set has its annotation
    boxed_pairs = set(zip(manifests["nih"]["image"], manifests["nih"]["task"], strict=True))
    nih_auc = auc[auc["dataset"] == "NIH"]
    boxed = np.array([pair in boxed_pairs for pair in zip(nih_auc["image"], nih_auc["task"], strict=True)])
    np.testing.assert_array_equal(nih_auc["annotation"] == "nih_boxes.csv", boxed)
    assert (nih_auc.loc[boxed, "label"] == 1).all()
    rsna_auc = auc[auc["dataset"] == "RSNA"]
    assert (rsna_auc["annotation"] != "").eq(rsna_auc["label"] == 1).all()

    # the sha256 of the label CSV each row came from
    for name, digest in table1.groupby("label_csv")["label_csv_sha256"].unique().items():
        assert list(digest) == [hashlib.sha256(packaged_file(name).read_bytes()).hexdigest()]
    assert table1["source_url"].str.startswith("https://").all()


def test_table1_auc_draw_is_the_released_codes(manifests, tmp_path):
    """mlmed/gifsplanation ``attribution.test_epoch(limit=2048)`` on torchxrayvision's own datasets,
    as its ``datasets.get_data`` builds them, draws exactly the committed rows."""
    auc = manifests["table1"][manifests["table1"]["selection"] == "auc"]
    datasets = {
        "NIH": (xrv.datasets.NIH_Dataset(str(tmp_path), unique_patients=False), "Image Index"),
        "RSNA": (xrv.datasets.RSNA_Pneumonia_Dataset(str(tmp_path)), "patientId"),
        "SIIM": (xrv.datasets.SIIM_Pneumothorax_Dataset(str(tmp_path), unique_patients=False), "ImageId"),
    }
    for task, dataset in GIFSPLANATION_TASKS.items():
        data, id_column = datasets[dataset]
        labels = data.labels[:, data.pathologies.index(task)]
        num_to_sample = 2048 // len(np.unique(labels))  # test_epoch, verbatim
        np.random.seed(0)
        mask = np.hstack([np.random.choice(np.where(labels == lab)[0], num_to_sample, replace=False)
                          for lab in np.unique(labels)])
        rows = auc[auc["task"] == task]
        assert data.csv[id_column].iloc[mask].astype(str).tolist() == rows["image"].tolist(), task
        np.testing.assert_array_equal(labels[mask], rows["label"].to_numpy())
        np.testing.assert_array_equal(released_auc_draw(labels), mask)


def test_table1_manifest_regenerates_byte_for_byte(manifests, tmp_path):
    siim_full = siim_rle_table()
    again = build_table1_manifest(manifests["nih"], manifests["rsna"], siim_full, seed=0)
    path = tmp_path / TABLE1.name
    write_manifest(again, path)
    assert path.read_bytes() == TABLE1.read_bytes()
    other = build_table1_manifest(manifests["nih"], manifests["rsna"], siim_full, seed=1, n_iou=4, n_auc=8)
    assert len(other) == 6 * (4 + 8) and not set(other["image"]) <= set(again["image"])


def test_balanced_rows_split_tasks_and_labels(manifests):
    table1, tasks = manifests["table1"], list(GIFSPLANATION_TASKS)
    rows = balanced_rows(table1, tasks, 6 * 1000, seed=3)  # Appendix K: 500 + 500 per task
    assert rows.groupby(["task", "label"]).size().eq(500).all() and rows["task"].nunique() == 6
    assert (rows["selection"] == "auc").all()
    full = balanced_rows(table1, tasks, 6 * 2048 + 50, seed=0)  # asks beyond the draw: all of it
    assert len(full) == 6 * 2048
    odd = balanced_rows(table1, tasks[:2], 7, seed=0)
    assert odd.groupby(["task", "label"]).size().to_dict() == {
        (tasks[0], 0): 2, (tasks[0], 1): 2, (tasks[1], 0): 1, (tasks[1], 1): 2}
    first = balanced_rows(table1, tasks, 24, seed=1)
    pd.testing.assert_frame_equal(first, balanced_rows(table1, tasks, 24, seed=1))
    assert not first["image"].equals(balanced_rows(table1, tasks, 24, seed=2)["image"])
    with pytest.raises(UnknownNameError, match="paper task"):
        balanced_rows(table1, ["Hernia"], 4)
    with pytest.raises(InvalidParameterError):
        balanced_rows(table1, tasks, -1)


def test_chexplain_samples(manifests):
    full = chexplain_table1_samples(manifests["nih"])
    assert len(full) == len(manifests["nih"].drop_duplicates(["task", "image"]))
    capped = chexplain_table1_samples(manifests["nih"], n_per_task=10, seed=2)
    assert capped.groupby("task").size().eq(10).all() and capped["task"].nunique() == 8


def test_reader_study_list(manifests, shared_data, monkeypatch):
    monkeypatch.setenv("CHEXP_DATA_DIR", str(shared_data))
    study = reader_study_samples()
    assert len(study) == 240 and study["example"].tolist() == list(range(1, 241))
    assert study.groupby("task").size().eq(40).all()
    assert study.groupby("task")["label"].sum().eq(20).all()
    assert study["dataset"].value_counts().to_dict() == {"NIH": 160, "RSNA": 40, "SIIM": 40}
    committed = manifests["samples"]
    committed = committed[committed["selection"] == "gifsplanation-reader-study"].reset_index(drop=True)
    assert committed["image"].tolist() == study["image"].tolist()
    # every true-positive NIH / RSNA example has an expert box in the committed tables
    boxes = set(manifests["nih"]["image"]) | set(manifests["rsna"]["image"])
    tp = study[(study["label"] == 1) & study["dataset"].isin(["NIH", "RSNA"])]
    assert tp["image"].isin(boxes).all()


# --- the folder loader ---------------------------------------------------------------------
def test_folder_names_every_missing_file(tmp_path, manifests):
    (tmp_path / "images").mkdir()
    present, absent = manifests["nih"]["image"].iloc[0], manifests["nih"]["image"].iloc[1]
    img = np.full((1024, 1024), 40, np.uint8)
    skimage.io.imsave(tmp_path / "images" / present, img, check_contrast=False)
    folder = PaperImageFolder(tmp_path, "NIH", size=32)
    assert folder.check([present]) == {present: tmp_path / "images" / present}
    with pytest.raises(DataUnavailableError, match=f"1 NIH image.*{absent}"):
        folder.check([present, absent])
    with pytest.raises(UnknownNameError):
        PaperImageFolder(tmp_path, "CheXpert")
    with pytest.raises(DataUnavailableError, match="does not exist"):
        PaperImageFolder(tmp_path / "nope", "NIH")


def test_folder_loads_nih_image_with_aligned_box(tmp_path, manifests):
    nih = manifests["nih"]
    row = nih[~nih["image"].duplicated(keep=False)].iloc[0]  # an image with a single box
    img = np.full((1024, 1024), 30, np.uint8)
    x0, y0 = int(np.floor(row.x)), int(np.floor(row.y))
    x1, y1 = int(np.ceil(row.x + row.w)), int(np.ceil(row.y + row.h))
    img[y0:y1, x0:x1] = 220
    (tmp_path / "images_003" / "images").mkdir(parents=True)
    skimage.io.imsave(tmp_path / "images_003" / "images" / row.image, img, check_contrast=False)
    image, mask = PaperImageFolder(tmp_path, "NIH", size=64).load(row.image)
    assert image.shape == (1, 64, 64) and mask.shape == (64, 64) and mask.any()
    bright = image[0] > 0
    assert (bright & mask).sum() / (bright | mask).sum() > 0.9


def test_siim_recursive_layout_and_mask(tmp_path, manifests):
    image_id = manifests["siim"]["image"].iloc[0]
    nested = tmp_path / "dicom-images-train" / "study" / "series"
    nested.mkdir(parents=True)
    (nested / f"{image_id}.dcm").write_bytes(b"")
    folder = PaperImageFolder(tmp_path, "SIIM", size=64)
    assert folder.path(image_id) == nested / f"{image_id}.dcm"
    mask = folder.mask(image_id, (1024, 1024))
    full = np.zeros((1024, 1024), bool)
    for rle in manifests["siim"].loc[manifests["siim"]["image"] == image_id, "rle"]:
        full |= decode_siim_rle(rle)
    expected = center_crop_resize(full[None].astype(np.float32), 64)[0] > 0.5
    assert mask.shape == (64, 64)
    assert (mask & expected).sum() / (mask | expected).sum() > 0.8
