"""Real NIH / RSNA / SIIM labels and the Gifsplanation Table 1 / Appendix K samples built from them.

The labels come from the CSVs packaged with torchxrayvision (checked by sha256, see
:data:`chexp.cohen.paper.PACKAGED`), read the way the released code's datasets read them
(torchxrayvision ``NIH_Dataset``, ``RSNA_Pneumonia_Dataset``, ``SIIM_Pneumothorax_Dataset`` as
mlmed/gifsplanation ``datasets.get_data`` builds them):

* NIH: ``Data_Entry_2017_v2020.csv.gz``, a finding is positive when ``Finding Labels`` contains
  its name; the AUC draw keeps PA views (the dataset's default ``views=["PA"]``).
* RSNA: ``kaggle_stage_2_train_labels.csv.zip``, one row per ``patientId`` (the first), label
  ``Target`` (Lung Opacity), views from ``kaggle_stage_2_train_images_dicom_headers.csv.gz``; PA
  only in the AUC draw.
* SIIM: ``siim-pneumothorax-train-rle.csv.gz``, one row per RLE segment in file order, positive
  when the RLE is not ``-1`` (an image with k segments has k rows, as in the released code).

The committed manifest :data:`TABLE1` (``data_manifests/gifsplanation_table1.csv.gz``) holds two
selections per task, each row with the real 0/1 label of its task:

* ``iou``: the positives with an expert box/mask whose IoU Table 1 reports (80 per task).
* ``auc``: the released code's balanced AUC draw (``attribution.test_epoch`` with
  ``limit=2048``): ``np.random.seed(0)``, then 1024 negatives and 1024 positives chosen without
  replacement from the dataset's rows, in that order (column ``draw``). Appendix K's
  500 positives and 500 negatives per task are a seeded subset of it (:func:`balanced_rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataUnavailableError, InvalidParameterError, UnknownNameError
from ..paths import MANIFEST_DIR
from .paper import GIFSPLANATION_TASKS, PACKAGED, gifsplanation_table1_samples, packaged_file

TABLE1 = MANIFEST_DIR / "gifsplanation_table1.csv.gz"
#: size of the released code's AUC draw per task (``test_epoch(..., limit=2048)``, Jan. 2021)
AUC_LIMIT = 2048
#: columns of :data:`TABLE1`
COLUMNS = ("selection", "dataset", "task", "image", "label", "draw", "view", "annotation",
           "label_csv", "label_csv_sha256", "source_url")


@dataclass(frozen=True)
class LabelSource:
    """Where one dataset's labels come from and how the released code read them."""

    label_csv: str  #: packaged torchxrayvision file holding the labels
    source_url: str  #: where a user downloads the images
    annotation: str  #: table holding the expert boxes / masks of its positives
    views: tuple[str, ...] | None  #: views the released code's dataset keeps (``None``: all)
    read: Callable[[str], pd.DataFrame]  #: task -> columns image, view, label (released row order)


def nih_labels(task: str) -> pd.DataFrame:
    """Every NIH image with its ``task`` label (``Finding Labels`` contains ``task``), file order."""
    e = pd.read_csv(packaged_file("Data_Entry_2017_v2020.csv.gz"),
                    usecols=["Image Index", "Finding Labels", "View Position"])
    return pd.DataFrame({"image": e["Image Index"], "view": e["View Position"],
                         "label": e["Finding Labels"].str.contains(task, regex=False).astype(int)})


def rsna_labels(task: str) -> pd.DataFrame:
    """Every RSNA patient (first row of each ``patientId``, sorted) with ``Target`` as label."""
    r = pd.read_csv(packaged_file("kaggle_stage_2_train_labels.csv.zip")).groupby("patientId").first()
    views = pd.read_csv(packaged_file("kaggle_stage_2_train_images_dicom_headers.csv.gz"),
                        usecols=["PatientID", "ViewPosition"], index_col="PatientID")["ViewPosition"]
    return pd.DataFrame({"image": r.index.astype(str), "view": r.index.map(views).fillna("UNKNOWN"),
                         "label": r["Target"].astype(int).to_numpy()})


def siim_labels(task: str) -> pd.DataFrame:
    """Every SIIM RLE row (file order; several per image with several segments), positive when the
    RLE is not ``-1``; no view is recorded."""
    s = pd.read_csv(packaged_file("siim-pneumothorax-train-rle.csv.gz"))
    s.columns = ["image", "rle"]
    return pd.DataFrame({"image": s["image"].astype(str), "view": "",
                         "label": (s["rle"].astype(str).str.strip() != "-1").astype(int)})


SOURCES: dict[str, LabelSource] = {
    "NIH": LabelSource("Data_Entry_2017_v2020.csv.gz", "https://nihcc.app.box.com/v/ChestXray-NIHCC",
                       "nih_boxes.csv", ("PA",), nih_labels),
    "RSNA": LabelSource("kaggle_stage_2_train_labels.csv.zip",
                        "https://www.kaggle.com/c/rsna-pneumonia-detection-challenge",
                        "rsna_boxes.csv", ("PA",), rsna_labels),
    "SIIM": LabelSource("siim-pneumothorax-train-rle.csv.gz",
                        "https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation",
                        "siim-pneumothorax-train-rle.csv.gz", None, siim_labels),
}


def released_auc_draw(labels: np.ndarray, limit: int = AUC_LIMIT, seed: int = 0) -> np.ndarray:
    """Row indices of the released code's balanced AUC sample (``attribution.test_epoch``).

    ``limit // (number of label values)`` rows per label value, label values in increasing order
    (negatives first), each chosen without replacement by the global NumPy generator seeded once
    with ``seed`` (``np.random.seed(0); np.random.choice(...)``; a :class:`numpy.random.RandomState`
    gives the same stream).

    Args:
        labels: ``(N,)`` 0/1 labels of the dataset's rows.
    """
    values = np.unique(labels)
    per_value = limit // len(values)
    state = np.random.RandomState(seed)
    return np.hstack([state.choice(np.flatnonzero(labels == v), per_value, replace=False) for v in values])


def _rows(selection: str, dataset: str, task: str, table: pd.DataFrame, has_mask: pd.Series) -> pd.DataFrame:
    source = SOURCES[dataset]
    return pd.DataFrame({
        "selection": selection, "dataset": dataset, "task": task,
        "image": table["image"].to_numpy(), "label": table["label"].to_numpy(),
        "draw": np.arange(len(table)), "view": table["view"].to_numpy(),
        "annotation": np.where(has_mask.to_numpy(), source.annotation, ""),
        "label_csv": source.label_csv, "label_csv_sha256": PACKAGED[source.label_csv],
        "source_url": source.source_url,
    })


def build_table1_manifest(nih_boxes: pd.DataFrame, rsna_boxes: pd.DataFrame, siim_rle: pd.DataFrame,
                          seed: int = 0, n_iou: int = 80, n_auc: int = AUC_LIMIT) -> pd.DataFrame:
    """The Gifsplanation Table 1 manifest (columns :data:`COLUMNS`), ``iou`` rows then ``auc`` rows.

    Args:
        nih_boxes, rsna_boxes, siim_rle: expert annotations (:func:`chexp.cohen.paper.build_nih_boxes`,
            :func:`~chexp.cohen.paper.build_rsna_boxes`, :func:`~chexp.cohen.paper.siim_rle_table`).
        seed: seed of both draws (0: the released code's AUC draw).
        n_iou: positives with an expert box/mask per task (``iou``).
        n_auc: balanced AUC draw per task (``auc``; half negatives, half positives).
    """
    annotated = {
        "NIH": lambda task: set(nih_boxes.loc[nih_boxes["task"] == task, "image"]),
        "RSNA": lambda task: set(rsna_boxes["image"]),
        "SIIM": lambda task: set(siim_rle["image"]),
    }
    iou = gifsplanation_table1_samples(nih_boxes, rsna_boxes, siim_rle, n=n_iou, seed=seed)
    parts_iou, parts_auc = [], []
    for task, dataset in GIFSPLANATION_TASKS.items():
        source, boxed = SOURCES[dataset], annotated[dataset](task)
        labels = source.read(task)
        image_label = labels.groupby("image", sort=False).agg(label=("label", "max"), view=("view", "first"))
        chosen = iou.loc[iou["task"] == task, ["image"]].join(image_label, on="image")
        parts_iou.append(_rows("iou", dataset, task, chosen, chosen["image"].isin(boxed)))
        pool = labels if source.views is None else labels[labels["view"].isin(source.views)]
        drawn = pool.iloc[released_auc_draw(pool["label"].to_numpy(), n_auc, seed)]
        parts_auc.append(_rows("auc", dataset, task, drawn, drawn["image"].isin(boxed) & (drawn["label"] == 1)))
    return pd.concat(parts_iou + parts_auc, ignore_index=True)[list(COLUMNS)]


def load_table1_manifest(path: Path = TABLE1) -> pd.DataFrame:
    """Read the committed Table 1 manifest (ids stay strings)."""
    if not Path(path).is_file():
        raise DataUnavailableError(f"no manifest at {path}; build it with python -m chexp.cohen.paper")
    return pd.read_csv(path, dtype={"image": str, "view": str, "annotation": str}, keep_default_na=False)


def balanced_rows(table: pd.DataFrame, tasks: Sequence[str], n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of the ``auc`` selection, split evenly over ``tasks`` and, within a task, over
    negatives and positives (the positives get the odd one), each part chosen with ``seed``.

    The first ``n % len(tasks)`` tasks get one row more. A part asks for at most what the draw
    holds (1024 per label): ``n = 6 * 2048`` returns the whole Table 1 AUC sample, ``n = 6 * 1000``
    Appendix K's 500 positives and 500 negatives per task. Rows keep the draw's order.

    Raises:
        UnknownNameError: a task without an ``auc`` draw.
        InvalidParameterError: ``n`` below 0.
    """
    if n < 0:
        raise InvalidParameterError(f"n must be at least 0, got {n}")
    auc = table[table["selection"] == "auc"]
    known = list(dict.fromkeys(auc["task"]))
    rng = np.random.default_rng(seed)
    parts = []
    for k, task in enumerate(tasks):
        if task not in known:
            raise UnknownNameError(task, known, "paper task")
        n_task = n // len(tasks) + (k < n % len(tasks))
        for label, count in ((0, n_task // 2), (1, n_task - n_task // 2)):
            group = auc[(auc["task"] == task) & (auc["label"] == label)]
            pick = np.sort(rng.choice(len(group), size=min(count, len(group)), replace=False))
            parts.append(group.iloc[pick])
    return pd.concat(parts, ignore_index=True) if parts else auc.iloc[:0]
