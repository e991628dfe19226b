"""Cohen / BrixIA manifest, patient split, lung zones and the Dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pooch
import pytest

from chexp.cohen.dataset import CohenDataset, detector_labels, select_rows
from chexp.cohen.manifest import COLUMNS, SCORE_COLUMNS, load_manifest
from chexp.cohen.splits import SPLITS, connected_groups, split_groups
from chexp.cohen.zones import (
    brixia_zones,
    lung_thirds,
    read_lung_mask,
    split_lungs,
    unmasked,
    zone_score_map,
)
from chexp.errors import ChecksumError, DataUnavailableError, InvalidMaskError


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return load_manifest()


@pytest.fixture
def data_dir(shared_data, monkeypatch):
    monkeypatch.setenv("CHEXP_DATA_DIR", str(shared_data))
    return shared_data


# --- the committed manifest -----------------------------------------------------------------
def test_manifest_columns_and_invariants(manifest):
    assert list(manifest.columns) == COLUMNS
    assert manifest["filename"].is_unique
    assert set(manifest["view"]) <= {"PA", "AP", "AP Supine", "AP Erect"}
    assert set(manifest["split"]) == set(SPLITS)
    assert manifest["url"].str.startswith(
        "https://raw.githubusercontent.com/ieee8023/covid-chestxray-dataset/"
        "584034aa7fbf06496741f11008d72fd791c8e443/images/"
    ).all()
    scored = manifest.dropna(subset=["S_global"])
    for rater in "SJ":
        zones = scored[[f"{rater}_{z}" for z in "ABCDEF"]].to_numpy(int)
        assert ((zones >= 0) & (zones <= 3)).all()
        # the global score is the sum of the six zone scores
        np.testing.assert_array_equal(zones.sum(1), scored[f"{rater}_global"].to_numpy(int))
    assert set(manifest["lung_mask_source"]) <= {"v7labs", "lungVAE", ""}


def test_split_is_patient_disjoint(manifest):
    for key in ("patient_group", "patientid"):
        per_patient = manifest.groupby(key)["split"].nunique()
        assert (per_patient == 1).all(), per_patient[per_patient > 1]
    # every patient id of a group maps to one split, including the ids merged by shared files
    ids = manifest["patient_group"].str.split("+").explode()
    assert ids.groupby(ids).size().index.is_unique
    counts = manifest["split"].value_counts()
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0
    assert manifest.groupby("split")["S_global"].count().min() >= 20


def test_split_reproducible_from_seed(manifest):
    again = split_groups(
        manifest["patient_group"].tolist(), strata=manifest["S_global"].notna().tolist(), seed=0
    )
    assert again == manifest["split"].tolist()
    other = split_groups(
        manifest["patient_group"].tolist(), strata=manifest["S_global"].notna().tolist(), seed=1
    )
    assert other != again


def test_split_groups_small_example():
    groups = ["a", "a", "b", "c", "c", "c", "d", "e", "f", "g"]
    split = split_groups(groups, seed=3, fractions=(0.6, 0.2, 0.2))
    assert len({s for g, s in zip(groups, split, strict=True) if g == "c"}) == 1
    assert split == split_groups(groups, seed=3, fractions=(0.6, 0.2, 0.2))
    with pytest.raises(ValueError, match="summing to 1"):
        split_groups(groups, fractions=(0.5, 0.2, 0.2))


def test_connected_groups_merges_shared_files():
    roots = connected_groups([("f1", "p1"), ("f1", "p2"), ("f2", "p3"), ("f3", "p2")])
    assert roots["p1"] == roots["p2"] == roots["f3"] != roots["p3"]


def test_manifest_sha256_matches_shared_data(manifest, shared_data):
    cohen = shared_data / "covid-chestxray-dataset"
    on_disk = sorted(p.name for p in (cohen / "images").iterdir())
    assert sorted(manifest["filename"]) == on_disk  # one row per frontal image available
    for row in manifest.itertuples():
        assert pooch.file_hash(cohen / row.path, alg="sha256") == row.sha256, row.path
    vae = manifest[manifest["lungvae_mask"] != ""]
    for row in vae.itertuples():
        assert pooch.file_hash(cohen / row.lungvae_mask, alg="sha256") == row.lungvae_mask_sha256


def test_manifest_scores_match_brixia_csv(manifest, shared_data):
    brixia = pd.read_csv(
        shared_data / "Brixia-score-COVID-19/data/public-annotations.csv", encoding="utf-8-sig"
    ).set_index("filename")
    scored = manifest.dropna(subset=["S_global"]).set_index("filename")
    assert len(scored) == len(set(brixia.index) & set(manifest["filename"])) == 171
    for col in SCORE_COLUMNS:
        upstream = col.replace("_global", "-Global").replace("_", "-")
        np.testing.assert_array_equal(scored[col].to_numpy(int), brixia.loc[scored.index, upstream])


# --- zones on synthetic masks --------------------------------------------------------------
def _two_lungs() -> np.ndarray:
    mask = np.zeros((64, 64), bool)
    mask[10:40, 5:21] = True  # image left = patient's right lung, rows 10..39
    mask[16:52, 40:56] = True  # image right = patient's left lung, rows 16..51
    return mask


def test_zones_of_two_separate_lungs():
    mask = _two_lungs()
    zones = brixia_zones(mask)
    assert zones.shape == (6, 64, 64) and zones.dtype == bool
    expected_rows = {0: (10, 20), 1: (20, 30), 2: (30, 40), 3: (16, 28), 4: (28, 40), 5: (40, 52)}
    for k, (r0, r1) in expected_rows.items():
        want = np.zeros_like(mask)
        cols = slice(5, 21) if k < 3 else slice(40, 56)
        want[r0:r1, cols] = True
        np.testing.assert_array_equal(zones[k], want, err_msg=f"zone {'ABCDEF'[k]}")
    # zones partition the lungs
    np.testing.assert_array_equal(zones.sum(0), mask.astype(int))


def test_small_fragment_joins_the_lung_on_its_side():
    mask = _two_lungs()
    mask[60, 62] = True  # one pixel below the image-right lung
    right, left = split_lungs(mask)
    assert left[60, 62] and not right[60, 62]
    # the left lung now spans rows 16..60 (45 rows): thirds of 15 rows
    zones = brixia_zones(mask)
    assert np.flatnonzero(zones[5].any(1)).min() == 46 and zones[5][60, 62]


def test_lung_thirds_exact_rows():
    lung = np.zeros((12, 4), bool)
    lung[3:12, 1:3] = True  # 9 rows: thirds of 3 rows
    thirds = lung_thirds(lung)
    for k in range(3):
        assert np.flatnonzero(thirds[k].any(1)).tolist() == list(range(3 + 3 * k, 6 + 3 * k))


def test_touching_lungs_cut_at_the_narrowest_column():
    mask = np.zeros((40, 60), bool)
    mask[5:35, 5:25] = True
    mask[8:32, 35:55] = True
    mask[20:22, 25:35] = True  # a thin bridge joins the lungs; its columns 25..34 are thinnest
    right, left = split_lungs(mask)
    assert right[:, :25].sum() == mask[:, :25].sum() and not right[:, 35:].any()
    assert left[:, 35:].sum() == mask[:, 35:].sum()
    np.testing.assert_array_equal(right | left, mask)
    assert not (right & left).any()


def test_split_lungs_rejects_empty_and_single():
    with pytest.raises(InvalidMaskError, match="empty"):
        split_lungs(np.zeros((8, 8), bool))
    with pytest.raises(InvalidMaskError):
        split_lungs(np.ones((8, 1), bool))


def test_zone_score_map_paints_scores():
    zones = brixia_zones(_two_lungs())
    scores = [3, 2, 1, 0, 1, 2]
    painted = zone_score_map(zones, scores)
    for k, s in enumerate(scores):
        assert np.all(painted[zones[k]] == s)
    assert np.all(painted[~zones.any(0)] == 0)
    with pytest.raises(ValueError):
        zone_score_map(zones, [1, 2, 3])


def test_detector_labels():
    z = np.array([[0, 1, 3, 0, 0, 1], [2, 2, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(detector_labels(z), [[1, 0, 1], [0, 1, 0], [0, 0, 1]])


# --- real masks and the Dataset ------------------------------------------------------------
def test_unmasked_rows_are_listed_not_guessed(manifest, data_dir):
    missing = unmasked(manifest)
    assert len(missing) == (manifest["lung_mask_source"] == "").sum() > 0
    with pytest.raises(DataUnavailableError, match="no lung mask"):
        read_lung_mask(missing.iloc[0], 64)


@pytest.mark.parametrize("source", ["v7labs", "lungVAE"])
def test_real_lung_masks_give_six_zones_right_lung_on_image_left(manifest, data_dir, source):
    rows = manifest[(manifest["lung_mask_source"] == source) & manifest["S_global"].notna()]
    for _, row in rows.head(3).iterrows():
        lungs = read_lung_mask(row, 64)
        assert lungs.shape == (64, 64) and 0.1 < lungs.mean() < 0.7
        zones = brixia_zones(lungs)
        cols = [np.flatnonzero(z.any(0)).mean() for z in zones]
        assert max(cols[:3]) < min(cols[3:])  # A-C (patient right) on the image left
        rows_mean = [np.flatnonzero(z.any(1)).mean() for z in zones]
        assert rows_mean[0] < rows_mean[1] < rows_mean[2] and rows_mean[3] < rows_mean[4] < rows_mean[5]


def test_dataset_items(manifest, data_dir):
    scored = manifest[manifest["S_global"].notna()]
    small = scored.loc[(scored["height"] * scored["width"]).nsmallest(3).index]
    ds = CohenDataset(manifest=small, size=32, with_masks=True)
    item = ds[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype.is_floating_point
    assert -1024 <= float(item["image"].min()) < float(item["image"].max()) <= 1024
    zone_scores = small.iloc[0][[f"S_{z}" for z in "ABCDEF"]].to_numpy(float)
    np.testing.assert_array_equal(item["zone_scores"][0].numpy(), zone_scores)
    assert item["global_score"].tolist() == [small.iloc[0]["S_global"], small.iloc[0]["J_global"]]
    assert item["zones"].shape == (6, 32, 32)
    assert bool(item["has_mask"]) == (small.iloc[0]["lung_mask_source"] != "")
    assert ds.load_images(progress=False).shape == (3, 1, 32, 32)
    with pytest.raises(IndexError):
        ds[3]


def test_dataset_split_selection(manifest):
    rows = select_rows(manifest, "test", brixia_only=True)
    assert set(rows["split"]) == {"test"} and rows["J_global"].notna().all()
    with pytest.raises(ValueError, match="unknown split"):
        select_rows(manifest, "training")


def test_corrupted_file_is_refused(manifest, tmp_path, monkeypatch, shared_data):
    row = manifest.iloc[0]
    local = tmp_path / "covid-chestxray-dataset" / row["path"]
    local.parent.mkdir(parents=True)
    local.write_bytes((shared_data / "covid-chestxray-dataset" / row["path"]).read_bytes()[:-10])
    monkeypatch.setenv("CHEXP_DATA_DIR", str(tmp_path))
    ds = CohenDataset(manifest=manifest.iloc[:1], size=32)
    with pytest.raises(ChecksumError):
        ds[0]
