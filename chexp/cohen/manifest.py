"""The Cohen / BrixIA manifest: one row per frontal radiograph of the COVID-19 image collection
available locally, with its pinned URL, sha256, patient, view, finding, licence, BrixIA zone scores
of both raters, severity scores, lung-mask source and patient-level split.

Build it (from the files under ``$CHEXP_DATA_DIR``) with::

    python -m chexp.cohen.manifest [--seed 0] [--out data_manifests/cohen_brixia.csv]

and read it with :func:`load_manifest`. The committed CSV is ``data_manifests/cohen_brixia.csv``;
``data_manifests/README.md`` describes every column.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pooch
import skimage.io

from ..data.remote import fetch, get_source
from ..errors import DataUnavailableError
from ..paths import MANIFEST_DIR, data_dir
from ..progress import tqdm
from .splits import DEFAULT_FRACTIONS, connected_groups, split_groups

COHEN = "covid-chestxray-dataset"
BRIXIA = "Brixia-score-COVID-19"
MANIFEST_PATH = MANIFEST_DIR / "cohen_brixia.csv"

#: annotation files read by the builder: (source, path, sha256)
METADATA = (COHEN, "metadata.csv", "e46ffab4cdeb4866491d32afe466baefd7acbcf268a75c260f81d8520b8664a0")
SEVERITY = (
    COHEN,
    "annotations/covid-severity-scores.csv",
    "a26f308bc405845cebd28cdc72caa21deb734d239c0aff4e487c26949b6d86d7",
)
BRIXIA_SCORES = (
    BRIXIA,
    "data/public-annotations.csv",
    "809a28a8a9d36478a55fced7e08742557ade8dfcddbab5725927827ec46b18d1",
)
LUNGVAE_DIR = "annotations/lungVAE-masks"
#: torchxrayvision's packaged V7 Labs lung masks (torchxrayvision 1.x ``data/`` folder)
V7LABS_ZIP = "semantic_masks_v7labs_lungs.zip"

FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP", "AP Supine", "AP Erect")
ZONES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F")
RATERS: tuple[str, ...] = ("S", "J")


def zone_columns(rater: str) -> list[str]:
    """Manifest columns of one rater's six zone scores, A..F (e.g. ``S_A`` ... ``S_F``)."""
    return [f"{rater}_{z}" for z in ZONES]


def global_column(rater: str) -> str:
    return f"{rater}_global"


SCORE_COLUMNS: list[str] = [
    c for r in RATERS for c in (*zone_columns(r), global_column(r))
]
COLUMNS: list[str] = [
    "filename", "path", "url", "sha256", "height", "width",
    "patientid", "patient_group", "offset", "sex", "age", "view", "finding", "license", "doi",
    *SCORE_COLUMNS,
    "geographic_mean", "opacity_mean",
    "v7labs_mask", "v7labs_mask_sha256", "lungvae_mask", "lungvae_mask_sha256",
    "lung_mask_source", "split",
]  # fmt: skip


def packaged_data_dir() -> Path:
    """The installed torchxrayvision package's ``data/`` folder."""
    from ..models._xrv_import import xrv

    return Path(xrv.__file__).parent / "data"


def v7labs_zip() -> Path:
    """torchxrayvision's packaged V7 Labs lung masks (:data:`V7LABS_ZIP`).

    Raises:
        DataUnavailableError: the file is not in :func:`packaged_data_dir`.
    """
    path = packaged_data_dir() / V7LABS_ZIP
    if not path.is_file():
        raise DataUnavailableError(f"torchxrayvision's {V7LABS_ZIP} is missing at {path}")
    return path


def read_binary_mask(data: bytes | str | Path) -> np.ndarray:
    """Decode a mask image (PNG/JPEG; bytes or a path) to bool ``(H, W)`` (grey value > 127)."""
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    arr = np.asarray(skimage.io.imread(source))
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=-1)
    return arr > (127 if arr.dtype == np.uint8 else arr.max() / 2)


def _fetch_csv(spec: tuple[str, str, str], **kwargs) -> pd.DataFrame:
    return pd.read_csv(fetch(*spec), **kwargs)


def _v7labs_masks(images: set[str]) -> dict[str, tuple[str, str]]:
    """filename -> (zip member, sha256 of member bytes) for non-empty masks of listed images."""
    out: dict[str, tuple[str, str]] = {}
    with zipfile.ZipFile(v7labs_zip()) as zf:
        for member in zf.namelist():
            name = member.rsplit("/", 1)[-1]
            if not name or name not in images:
                continue
            data = zf.read(member)
            if read_binary_mask(data).any():
                out[name] = (member, hashlib.sha256(data).hexdigest())
    return out


def build_manifest(
    seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS, progress: bool = True
) -> pd.DataFrame:
    """Build the manifest from the files under ``data_dir()`` (see the module docstring).

    One row per file in ``covid-chestxray-dataset/images/`` whose metadata row is a frontal
    view. Where the metadata lists one file under two patient ids (4 files upstream), the row
    keeps the first id and ``patient_group`` joins both, so the split stays patient-disjoint.
    """
    src = get_source(COHEN)
    image_dir = data_dir() / COHEN / "images"
    if not image_dir.is_dir():
        raise DataUnavailableError(
            f"no local copy of {COHEN}/images at {image_dir}: set CHEXP_DATA_DIR to a mirror"
        )
    files = sorted(p.name for p in image_dir.iterdir() if p.is_file())
    meta = _fetch_csv(METADATA, dtype={"patientid": str, "offset": str})
    meta = meta[meta["filename"].isin(files) & meta["view"].isin(FRONTAL_VIEWS)]
    links = [(f"file:{f}", f"patient:{p}") for f, p in zip(meta["filename"], meta["patientid"], strict=True)]
    roots = connected_groups(links)
    group_members: dict[str, list[str]] = {}
    for p in dict.fromkeys(meta["patientid"]):
        group_members.setdefault(roots[f"patient:{p}"], []).append(p)
    meta = meta.drop_duplicates("filename", keep="first").set_index("filename")

    brixia = _fetch_csv(BRIXIA_SCORES, encoding="utf-8-sig").set_index("filename")
    brixia.columns = [c.replace("-", "_").replace("Global", "global") for c in brixia.columns]
    severity = _fetch_csv(SEVERITY, comment="#").set_index("filename")
    v7 = _v7labs_masks(set(meta.index))
    vae_dir = data_dir() / COHEN / LUNGVAE_DIR

    rows = []
    for name in tqdm(list(meta.index), desc="cohen manifest", disable=not progress):
        m = meta.loc[name]
        path = f"images/{name}"
        image = skimage.io.imread(image_dir / name)
        group = roots[f"patient:{m['patientid']}"]
        row: dict = {
            "filename": name,
            "path": path,
            "url": src.url(path),
            "sha256": pooch.file_hash(image_dir / name, alg="sha256"),
            "height": image.shape[0],
            "width": image.shape[1],
            "patientid": m["patientid"],
            "patient_group": "+".join(sorted(group_members[group], key=str)),
            "offset": m["offset"],
            "sex": m["sex"],
            "age": m["age"],
            "view": m["view"],
            "finding": m["finding"],
            "license": m["license"],
            "doi": m["doi"],
        }
        if name in brixia.index:
            for col in SCORE_COLUMNS:
                row[col] = int(brixia.loc[name, col])
        if name in severity.index:
            row["geographic_mean"] = float(severity.loc[name, "geographic_mean"])
            row["opacity_mean"] = float(severity.loc[name, "opacity_mean"])
        if name in v7:
            row["v7labs_mask"], row["v7labs_mask_sha256"] = v7[name]
        vae = vae_dir / f"{Path(name).stem}_mask.png"
        if vae.is_file() and read_binary_mask(vae).any():
            row["lungvae_mask"] = f"{LUNGVAE_DIR}/{vae.name}"
            row["lungvae_mask_sha256"] = pooch.file_hash(vae, alg="sha256")
        row["lung_mask_source"] = (
            "v7labs" if name in v7 else "lungVAE" if "lungvae_mask" in row else ""
        )
        rows.append(row)
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    df["split"] = split_groups(
        df["patient_group"].tolist(), strata=df["S_global"].notna().tolist(), seed=seed,
        fractions=fractions,
    )
    return _typed(df)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for col in SCORE_COLUMNS:
        df[col] = df[col].astype("Int64")
    for col in ("height", "width"):
        df[col] = df[col].astype(int)
    text = [c for c in COLUMNS if c not in (*SCORE_COLUMNS, "height", "width", "age",
                                            "geographic_mean", "opacity_mean")]
    for col in text:
        df[col] = df[col].fillna("").astype(str)
    return df


def load_manifest(path: str | Path | None = None) -> pd.DataFrame:
    """Read the Cohen/BrixIA manifest (default: the committed ``data_manifests/cohen_brixia.csv``).

    Score columns are nullable integers (``Int64``; missing = not scored); text columns are
    strings with ``""`` for missing.
    """
    path = Path(path) if path is not None else MANIFEST_PATH
    if not path.is_file():
        raise DataUnavailableError(f"no manifest at {path}; build it with python -m chexp.cohen.manifest")
    df = pd.read_csv(path, dtype={"patientid": str, "offset": str, "patient_group": str})
    return _typed(df.reindex(columns=COLUMNS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the patient split")
    parser.add_argument("--out", type=Path, default=MANIFEST_PATH)
    args = parser.parse_args(argv)
    df = build_manifest(seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    counts = df.groupby("split").agg(images=("filename", "size"), brixia=("S_global", "count"))
    print(f"wrote {len(df)} rows to {args.out}\n{counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
