"""NIH / RSNA / SIIM annotation manifests of the ``paper`` profile, and a loader of their images.

The annotations come from CSVs packaged with torchxrayvision (its ``data/`` folder, checked by
sha256); the *images* are not redistributable and cannot be downloaded here: a user points
:class:`PaperImageFolder` at the folder where they downloaded each dataset.

Committed manifests (``data_manifests/``; build them with ``python -m chexp.cohen.paper``):

* ``nih_boxes.csv``: the 984 NIH ChestX-ray8 boxes (8 findings; Gifsplanation uses Atelectasis,
  Cardiomegaly, Effusion and Mass; CheXplain-IBA Table 1 uses all 8), in 1024x1024 PNG pixels.
* ``rsna_boxes.csv``: the RSNA Pneumonia Challenge lung-opacity boxes (``Target == 1``).
* ``siim_masks.csv``: SIIM-ACR pneumothorax masks as Kaggle RLE, for the sampled images only
  (the full table is 5 MB; :func:`siim_rle_table` reads it from torchxrayvision).
* ``paper_samples.csv``: reproducible selections: ``chexplain-table1`` (NIH box images, all 8
  findings) and ``gifsplanation-reader-study`` (the 240 examples of
  ``gifsplanation/trial_record.json.gz`` in presentation order).
* ``gifsplanation_table1.csv.gz``: Gifsplanation Table 1's IoU positives and its balanced AUC
  draw with real labels (:mod:`chexp.cohen.paper_labels`).
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pooch

from ..data.images import box_to_mask, center_crop_resize, crop_resize_mask, read_raw
from ..data.remote import fetch
from ..errors import ChecksumError, DataUnavailableError, InvalidParameterError, UnknownNameError
from ..paths import MANIFEST_DIR
from .manifest import packaged_data_dir

#: torchxrayvision's packaged annotation files and their sha256 (torchxrayvision 1.x)
PACKAGED: dict[str, str] = {
    "BBox_List_2017.csv.gz": "cf9dc6029f65daa8b389415b0546af0eeeb91fbac7d63ec49d7f8de2fd8f40cd",
    "Data_Entry_2017_v2020.csv.gz": "9d4de640ee4f760215d8be98376b20387ca52f9c6b4d1b727cb588fb82f40b80",
    "kaggle_stage_2_train_labels.csv.zip": "73044dc075ffa05bde37b6c6165661a87d7c3fd0fdd277f909945e11263c06b0",
    "kaggle_stage_2_train_images_dicom_headers.csv.gz":
        "600a2b388e0beddc1d32b8fc17de432c0559cfa6865238bdf83c916f42d86c72",
    "siim-pneumothorax-train-rle.csv.gz": "f3663a1ae9d11067b7a37a3c4fb69e22eb3c7a960d4118c47235e0e1cab64489",
}
TRIAL_RECORD = ("gifsplanation", "trial_record.json.gz",
                "a4fe9990e72f0a35280d4fcd506c4ae148e2b076e49e58b519a8cc8d98ae2e5e")

NIH_BOXES = MANIFEST_DIR / "nih_boxes.csv"
RSNA_BOXES = MANIFEST_DIR / "rsna_boxes.csv"
SIIM_MASKS = MANIFEST_DIR / "siim_masks.csv"
SAMPLES = MANIFEST_DIR / "paper_samples.csv"

#: Gifsplanation Table 1 tasks: task -> dataset
GIFSPLANATION_TASKS: dict[str, str] = {
    "Atelectasis": "NIH", "Cardiomegaly": "NIH", "Effusion": "NIH", "Mass": "NIH",
    "Lung Opacity": "RSNA", "Pneumothorax": "SIIM",
}
#: trial_record ``dataset`` names -> ours
TRIAL_DATASETS = {"NIH_Dataset": "NIH", "RSNA_Pneumonia_Dataset": "RSNA",
                  "SIIM_Pneumothorax_Dataset": "SIIM"}
#: the image id inside each trial_record ``source``
TRIAL_ID_FIELD = {"NIH": "Image Index", "RSNA": "patientId", "SIIM": "ImageId"}
#: pixel side of the images the annotations refer to (NIH PNGs, RSNA and SIIM DICOMs)
ANNOTATION_SIDE = 1024


def packaged_file(name: str) -> Path:
    """Path of a torchxrayvision packaged file, after checking its sha256."""
    if name not in PACKAGED:
        raise UnknownNameError(name, PACKAGED, "packaged annotation file")
    path = packaged_data_dir() / name
    if not path.is_file():
        raise DataUnavailableError(f"{name} is missing from torchxrayvision's data folder {path.parent}")
    actual = pooch.file_hash(path, alg="sha256")
    if actual != PACKAGED[name]:
        raise ChecksumError(
            f"{path} has sha256 {actual}, expected {PACKAGED[name]} (another torchxrayvision "
            "version?); the committed manifests were built from the expected file"
        )
    return path


# --------------------------------------------------------------------------------------------
# SIIM run-length encoding
# --------------------------------------------------------------------------------------------
def decode_siim_rle(rle: str, height: int = ANNOTATION_SIDE, width: int = ANNOTATION_SIDE) -> np.ndarray:
    """Decode one SIIM-ACR RLE string to a bool ``(height, width)`` mask.

    The SIIM format is *relative* and column-major: pairs ``(gap, length)`` where ``gap`` counts
    from the end of the previous run (the first from pixel 0), over the image flattened column by
    column (so the flat index is ``column * height + row``). ``"-1"`` (no pneumothorax) decodes
    to an empty mask.
    """
    rle = str(rle).strip()
    flat = np.zeros(height * width, dtype=bool)
    if rle == "-1" or not rle:
        return flat.reshape(width, height).T
    try:
        values = np.asarray(rle.split(), dtype=np.int64)
    except ValueError:
        raise InvalidParameterError(f"rle must hold integers or be '-1', got {rle[:60]!r}") from None
    if len(values) % 2:
        raise InvalidParameterError(f"rle must hold (gap, length) pairs, got {len(values)} numbers")
    position = 0
    for gap, length in values.reshape(-1, 2):
        position += gap
        if gap < 0 or length < 0 or position + length > flat.size:
            raise InvalidParameterError(f"rle run ({gap}, {length}) leaves the {height}x{width} image")
        flat[position : position + length] = True
        position += length
    return flat.reshape(width, height).T


def encode_siim_rle(mask: np.ndarray) -> str:
    """Inverse of :func:`decode_siim_rle` (``"-1"`` for an empty mask)."""
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    if not len(edges):
        return "-1"
    starts, ends = edges[0::2], edges[1::2]
    gaps = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{g} {e - s}" for g, s, e in zip(gaps, starts, ends, strict=True))


# --------------------------------------------------------------------------------------------
# builders (from torchxrayvision's CSVs)
# --------------------------------------------------------------------------------------------
def build_nih_boxes() -> pd.DataFrame:
    """All NIH boxes with patient id and view: columns dataset, image, patientid, view, task, x, y, w, h."""
    b = pd.read_csv(packaged_file("BBox_List_2017.csv.gz")).iloc[:, :6]
    b.columns = ["image", "task", "x", "y", "w", "h"]
    e = pd.read_csv(packaged_file("Data_Entry_2017_v2020.csv.gz"),
                    usecols=["Image Index", "Patient ID", "View Position"])
    e.columns = ["image", "patientid", "view"]
    out = b.merge(e, on="image", how="left")
    out.insert(0, "dataset", "NIH")
    return out[["dataset", "image", "patientid", "view", "task", "x", "y", "w", "h"]]


def build_rsna_boxes() -> pd.DataFrame:
    """RSNA lung-opacity boxes (``Target == 1``): columns dataset, image, task, x, y, w, h."""
    r = pd.read_csv(packaged_file("kaggle_stage_2_train_labels.csv.zip"))
    r = r[r["Target"] == 1].rename(columns={"patientId": "image", "width": "w", "height": "h"})
    r = r.assign(dataset="RSNA", task="Lung Opacity")
    if (r[["x", "y", "w", "h"]] % 1 == 0).all(axis=None):  # whole pixels: store as integers
        r[["x", "y", "w", "h"]] = r[["x", "y", "w", "h"]].astype(int)
    return r[["dataset", "image", "task", "x", "y", "w", "h"]].reset_index(drop=True)


def siim_rle_table() -> pd.DataFrame:
    """Every positive SIIM RLE row: columns image, rle (several rows per image are possible)."""
    s = pd.read_csv(packaged_file("siim-pneumothorax-train-rle.csv.gz"))
    s.columns = ["image", "rle"]
    s["rle"] = s["rle"].astype(str).str.strip()
    return s[s["rle"] != "-1"].reset_index(drop=True)


def _seeded_pick(ids: Sequence[str], n: int | None, rng: np.random.Generator) -> list[str]:
    ids = sorted(set(ids))
    if n is None or n >= len(ids):
        return ids
    return sorted(ids[i] for i in rng.choice(len(ids), size=n, replace=False))


def gifsplanation_table1_samples(
    nih: pd.DataFrame, rsna: pd.DataFrame, siim: pd.DataFrame, n: int = 80, seed: int = 0
) -> pd.DataFrame:
    """``n`` images per Gifsplanation Table 1 task with an expert box/mask, chosen with ``seed``."""
    pools = {
        "NIH": lambda task: nih.loc[nih["task"] == task, "image"],
        "RSNA": lambda task: rsna["image"],
        "SIIM": lambda task: siim["image"],
    }
    rng = np.random.default_rng(seed)
    rows = []
    for task, dataset in GIFSPLANATION_TASKS.items():
        for image in _seeded_pick(pools[dataset](task).tolist(), n, rng):
            rows.append({"selection": "gifsplanation-table1", "dataset": dataset, "task": task, "image": image})
    return pd.DataFrame(rows)


def chexplain_table1_samples(nih: pd.DataFrame, n_per_task: int | None = None, seed: int = 0) -> pd.DataFrame:
    """NIH box images of CheXplain-IBA Table 1 (all 8 findings); ``n_per_task`` caps each finding
    with a seeded choice (``None``: all 984 boxes' images)."""
    rng = np.random.default_rng(seed)
    rows = []
    for task in sorted(nih["task"].unique()):
        for image in _seeded_pick(nih.loc[nih["task"] == task, "image"].tolist(), n_per_task, rng):
            rows.append({"selection": "chexplain-table1", "dataset": "NIH", "task": task, "image": image})
    return pd.DataFrame(rows)


def reader_study_samples() -> pd.DataFrame:
    """The 240 Gifsplanation reader-study examples, in presentation order (``example`` 1..240)."""
    with gzip.open(fetch(*TRIAL_RECORD), "rt") as handle:
        record = json.load(handle)
    rows = []
    for k, ex in enumerate(record, start=1):
        dataset = TRIAL_DATASETS[ex["dataset"]]
        rows.append({
            "selection": "gifsplanation-reader-study", "dataset": dataset, "task": ex["target"],
            "image": str(ex["source"][TRIAL_ID_FIELD[dataset]]), "example": k,
            "label": int(ex["label"]), "trial": int(ex["trial"]), "model_used": ex["model_used"],
            "pred": float(ex["pred"]),
        })
    return pd.DataFrame(rows)


def build_paper_manifests(seed: int = 0, n_per_task: int = 80) -> dict[Path, pd.DataFrame]:
    """Every ``paper`` manifest, keyed by the path it is committed at.

    ``n_per_task``: Gifsplanation Table 1's IoU positives per task; ``seed`` seeds every draw
    (0 gives the released code's Table 1 AUC draw, see :mod:`chexp.cohen.paper_labels`).
    """
    from .paper_labels import TABLE1, build_table1_manifest  # it builds on this module

    nih, rsna, siim = build_nih_boxes(), build_rsna_boxes(), siim_rle_table()
    table1 = build_table1_manifest(nih, rsna, siim, seed=seed, n_iou=n_per_task)
    samples = pd.concat([chexplain_table1_samples(nih, seed=seed), reader_study_samples()], ignore_index=True)
    # masks committed for the SIIM images that a selection explains (the rest: siim_rle_table())
    needed = set(samples.loc[samples["dataset"] == "SIIM", "image"])
    needed |= set(table1.loc[(table1["dataset"] == "SIIM") & (table1["selection"] == "iou"), "image"])
    siim_needed = siim[siim["image"].isin(needed)].assign(dataset="SIIM", task="Pneumothorax")
    return {NIH_BOXES: nih, RSNA_BOXES: rsna,
            SIIM_MASKS: siim_needed[["dataset", "image", "task", "rle"]], SAMPLES: samples, TABLE1: table1}


def write_manifest(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` as CSV, gzip-compressed with a fixed header time when ``path`` ends in
    ``.gz`` (so that the same table always gives the same bytes)."""
    compression = {"method": "gzip", "mtime": 0} if str(path).endswith(".gz") else None
    table.to_csv(path, index=False, compression=compression)


def load_paper_manifest(path: Path) -> pd.DataFrame:
    """Read one committed ``paper`` manifest (ids stay strings)."""
    if not Path(path).is_file():
        raise DataUnavailableError(f"no manifest at {path}; build it with python -m chexp.cohen.paper")
    return pd.read_csv(path, dtype={"image": str, "patientid": str})


# --------------------------------------------------------------------------------------------
# the image folder loader
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Where a dataset's images lie in its standard download layout, and how they are named."""

    file_name: str  # format string with {image}
    patterns: tuple[str, ...]  # glob patterns (relative to the root) of folders holding them
    recursive: bool = False  # search every sub-folder (SIIM: study/series/instance.dcm)


LAYOUTS: dict[str, Layout] = {
    # NIH ChestX-ray8: images/*.png, or the Kaggle images_001/images/*.png split
    "NIH": Layout("{image}", (".", "images", "images_*/images")),
    # RSNA Pneumonia Challenge: stage_2_train_images/<patientId>.dcm
    "RSNA": Layout("{image}.dcm", (".", "stage_2_train_images")),
    # SIIM-ACR: dicom-images-train/<study>/<series>/<ImageId>.dcm
    "SIIM": Layout("{image}.dcm", (".",), recursive=True),
}


class PaperImageFolder:
    """Images of NIH, RSNA or SIIM from a user-given folder, with their expert masks.

    Args:
        root: the folder the dataset was downloaded to (its standard layout, see :data:`LAYOUTS`).
        dataset: ``"NIH"``, ``"RSNA"`` or ``"SIIM"``.
        size: side of the returned image and mask.

    :meth:`check` names every missing file at once (``DataUnavailableError``), so a run fails
    before heavy work; :meth:`load` returns ``(image (1, S, S) float32 in [-1024, 1024],
    mask (S, S) bool)``, the mask put through the same center crop and resize as the image;
    :meth:`image` returns the image alone (images without an expert annotation).
    """

    def __init__(self, root: str | Path, dataset: str, size: int = 224) -> None:
        if dataset not in LAYOUTS:
            raise UnknownNameError(dataset, LAYOUTS, "dataset")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataUnavailableError(f"{dataset} image folder {self.root} does not exist")
        self.dataset = dataset
        self.layout = LAYOUTS[dataset]
        self.size = size

    @cached_property
    def _index(self) -> dict[str, Path]:
        """file name -> path, for a recursive layout (built once)."""
        return {p.name: p for p in self.root.rglob("*") if p.is_file()}

    def path(self, image: str) -> Path | None:
        """The file of ``image`` or ``None`` if it is not in the folder."""
        name = self.layout.file_name.format(image=image)
        if self.layout.recursive:
            return self._index.get(name)
        for pattern in self.layout.patterns:
            for folder in sorted(self.root.glob(pattern)) if "*" in pattern else [self.root / pattern]:
                if (folder / name).is_file():
                    return folder / name
        return None

    def check(self, images: Iterable[str]) -> dict[str, Path]:
        """Paths of ``images``; raises :class:`DataUnavailableError` naming every missing one."""
        found, missing = {}, []
        for image in images:
            path = self.path(image)
            (missing.append(image) if path is None else found.__setitem__(image, path))
        if missing:
            shown = ", ".join(self.layout.file_name.format(image=m) for m in missing[:10])
            raise DataUnavailableError(
                f"{len(missing)} {self.dataset} image(s) missing under {self.root} (expected layout: "
                f"{' or '.join(self.layout.patterns)}{' and sub-folders' if self.layout.recursive else ''}): "
                f"{shown}{' ...' if len(missing) > 10 else ''}. These images cannot be redistributed; "
                "download them from the dataset's site."
            )
        return found

    def mask(self, image: str, shape: tuple[int, int], task: str | None = None) -> np.ndarray:
        """Expert mask of ``image`` at ``self.size``: the union of its boxes / RLE masks of finding
        ``task`` (``None``: of every finding; an NIH image may have boxes of several)."""
        return MASK_BUILDERS[self.dataset](image, shape, self.size, task)

    def image(self, image: str) -> np.ndarray:
        """``image`` alone (no expert mask needed): ``(1, S, S)`` float32 in [-1024, 1024]."""
        return center_crop_resize(read_raw(self.check([image])[image]), self.size)

    def load(self, image: str, task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``image`` and its expert mask of finding ``task`` (see :meth:`mask`)."""
        raw = read_raw(self.check([image])[image])
        return center_crop_resize(raw, self.size), self.mask(image, raw.shape[-2:], task)


def _boxes_mask(table: pd.DataFrame, image: str, shape: tuple[int, int], size: int, task: str | None) -> np.ndarray:
    rows = table[(table["image"] == image) & ((table["task"] == task) if task is not None else True)]
    if rows.empty:
        raise DataUnavailableError(f"no expert box for {image}" + (f" and finding {task!r}" if task else ""))
    mask = np.zeros((size, size), bool)
    for r in rows.itertuples():
        mask |= box_to_mask((r.x, r.y, r.w, r.h), shape, size)
    return mask


def _siim_mask(image: str, shape: tuple[int, int], size: int, task: str | None) -> np.ndarray:
    table = load_paper_manifest(SIIM_MASKS)
    rles = table.loc[table["image"] == image, "rle"]
    if rles.empty:
        full = siim_rle_table()
        rles = full.loc[full["image"] == image, "rle"]
    if rles.empty:
        raise DataUnavailableError(f"no SIIM pneumothorax mask for {image}")
    mask = np.zeros(shape, bool)
    for rle in rles:
        mask |= decode_siim_rle(rle, *shape)
    return crop_resize_mask(mask, size)


#: dataset -> (image, shape, size, task) -> expert mask; RSNA and SIIM annotate one finding each
MASK_BUILDERS = {
    "NIH": lambda image, shape, size, task: _boxes_mask(load_paper_manifest(NIH_BOXES), image, shape, size, task),
    "RSNA": lambda image, shape, size, task: _boxes_mask(load_paper_manifest(RSNA_BOXES), image, shape, size, task),
    "SIIM": _siim_mask,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the NIH/RSNA/SIIM manifests of the paper profile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-per-task", type=int, default=80)
    args = parser.parse_args(argv)
    for path, df in build_paper_manifests(args.seed, args.n_per_task).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(df, path)
        print(f"wrote {len(df)} rows to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
