"""NIH ChestX-ray8 training images for CheXplain-IBA's IBA statistics under the ``paper`` profile.

IBA replaces a feature map by noise with the map's per-unit mean and standard deviation over a
data set (the reference recommends 10,000 images; the released CheXplain-IBA code fits on 800
NIH images). The committed manifest :data:`NIH_TRAINING` (``data_manifests/chexplain_nih_training.csv.gz``)
lists :data:`N_ROWS` NIH images to fit them on, in a seeded random order, so that the first
``n`` rows are a random sample of any size ``n``:

* every NIH image of torchxrayvision's packaged ``Data_Entry_2017_v2020.csv.gz`` (checked by
  sha256, :data:`chexp.cohen.paper.PACKAGED`), all views;
* minus every image of a *patient* who has an image in an evaluation selection: the 880 NIH box
  images (CheXplain-IBA Table 1, ``nih_boxes.csv``), the NIH images of Gifsplanation Table 1
  (``gifsplanation_table1.csv.gz``, both selections) and of its reader study
  (``paper_samples.csv``). torchxrayvision does not package NIH's official
  ``train_val_list.txt``, so "training split" here means patient-disjoint from every image a
  notebook explains or scores.

Build it with ``python -m chexp.cohen.chexplain_rows``; the same packaged CSV and committed
manifests always give the same bytes (``tests/test_paper_chexplain.py`` rebuilds it).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataUnavailableError, InvalidParameterError
from ..paths import MANIFEST_DIR
from .paper import NIH_BOXES, SAMPLES, load_paper_manifest, packaged_file, write_manifest

NIH_TRAINING = MANIFEST_DIR / "chexplain_nih_training.csv.gz"
#: rows of :data:`NIH_TRAINING` (the reference IBA's recommended number of images)
N_ROWS = 10_000
#: columns of :data:`NIH_TRAINING`
COLUMNS = ("dataset", "image", "patientid", "view")


def evaluation_images() -> set[str]:
    """Every NIH image (file name) that a ``paper`` selection explains or scores."""
    from .paper_labels import load_table1_manifest

    table1 = load_table1_manifest()
    samples = load_paper_manifest(SAMPLES)
    return (set(load_paper_manifest(NIH_BOXES)["image"])
            | set(table1.loc[table1["dataset"] == "NIH", "image"])
            | set(samples.loc[samples["dataset"] == "NIH", "image"]))


def build_training_rows(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """``n`` NIH images of patients without any evaluation image, in a random order drawn with
    ``numpy.random.default_rng(seed)`` from the pool sorted by file name.

    Returns:
        columns :data:`COLUMNS` (``dataset`` is ``"NIH"``, ``image`` the file name).
    """
    entries = pd.read_csv(packaged_file("Data_Entry_2017_v2020.csv.gz"),
                          usecols=["Image Index", "Patient ID", "View Position"])
    entries.columns = ["image", "patientid", "view"]
    held_out = set(entries.loc[entries["image"].isin(evaluation_images()), "patientid"])
    pool = entries[~entries["patientid"].isin(held_out)].sort_values("image", ignore_index=True)
    if n > len(pool):
        raise InvalidParameterError(f"n must be at most {len(pool)} (the eligible NIH images), got {n}")
    chosen = pool.iloc[np.random.default_rng(seed).choice(len(pool), size=n, replace=False)]
    return chosen.assign(dataset="NIH")[list(COLUMNS)].reset_index(drop=True)


def training_rows(n: int | None = None, path: Path = NIH_TRAINING) -> pd.DataFrame:
    """The first ``n`` rows (``None``: all) of the committed NIH training manifest: the images
    :meth:`chexp.profiles.PaperProfile.training_images` reads, columns :data:`COLUMNS`.

    Raises:
        DataUnavailableError: the manifest is missing.
        InvalidParameterError: ``n`` is below 0 or above the manifest's :data:`N_ROWS` rows.
    """
    if not Path(path).is_file():
        raise DataUnavailableError(f"no manifest at {path}; build it with python -m chexp.cohen.chexplain_rows")
    table = pd.read_csv(path, dtype={"image": str, "patientid": str, "view": str})
    if n is not None and not 0 <= n <= len(table):
        raise InvalidParameterError(f"n must be between 0 and {len(table)} (the manifest's NIH training images), "
                                    f"got {n}")
    return table if n is None else table.iloc[:n].reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the NIH training manifest of CheXplain-IBA's IBA statistics")
    parser.add_argument("--n", type=int, default=N_ROWS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = build_training_rows(args.n, args.seed)
    write_manifest(table, NIH_TRAINING)
    print(f"wrote {len(table)} rows to {NIH_TRAINING}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
