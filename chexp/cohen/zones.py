"""Lung masks and BrixIA zones A-F.

Lung masks come from two sources, recorded per image in the manifest (``lung_mask_source``):

* ``"v7labs"``: torchxrayvision's packaged ``semantic_masks_v7labs_lungs.zip`` (manual
  annotations by V7 Labs), preferred where present;
* ``"lungVAE"``: ``covid-chestxray-dataset/annotations/lungVAE-masks/`` (predicted by the
  lungVAE segmentation model).

Images without either have ``lung_mask_source == ""``: they are listed by :func:`unmasked` and
excluded from zone-based metrics; no mask is guessed for them.

Zones follow Borghesi and Maroldi's BrixIA scheme as CheXplain-IBA computes them: each lung is cut
into thirds of its own height, top to bottom. A, B, C are the patient's *right* lung (the image's
left, radiological convention), D, E, F the left lung (image right). The lungs are told apart and
cut by :mod:`chexp.metrics.severity` (:func:`split_lungs`, :func:`lung_thirds`), the one
implementation the phantom severity score uses too; this module re-exports them.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence

import numpy as np
import pandas as pd
import skimage.transform

from ..data.images import crop_resize_mask
from ..data.remote import fetch
from ..errors import ChecksumError, DataUnavailableError, InputShapeError
from ..metrics import severity
from ..metrics.severity import MIN_LUNG_RATIO, lung_thirds, split_lungs
from .manifest import COHEN, ZONES, read_binary_mask, v7labs_zip

__all__ = [
    "MASK_READERS",
    "MIN_LUNG_RATIO",
    "brixia_zones",
    "lung_thirds",
    "read_lung_mask",
    "split_lungs",
    "unmasked",
    "zone_score_map",
]


def unmasked(manifest: pd.DataFrame) -> pd.DataFrame:
    """Rows without a lung mask (excluded from zone-based metrics)."""
    return manifest[manifest["lung_mask_source"].fillna("") == ""]


def brixia_zones(mask: np.ndarray) -> np.ndarray:
    """BrixIA zones of a lung mask ``(H, W)``: bool numpy ``(6, H, W)`` in the order A, B, C, D, E, F
    (:func:`chexp.metrics.severity.brixia_zones`: the two lungs of the mask, each cut into thirds).

    A-C: the patient's right lung (image left), upper to lower third; D-F: the left lung.

    Raises:
        InvalidMaskError: the mask is empty or holds one lung only.
    """
    return severity.brixia_zones(np.asarray(mask, dtype=bool)).numpy()


def zone_score_map(zones: np.ndarray, scores: Sequence[float]) -> np.ndarray:
    """Paint each pixel with its zone's score: float32 ``(H, W)``, 0 outside the lungs.

    Args:
        zones: bool ``(6, H, W)`` from :func:`brixia_zones`.
        scores: six zone scores A..F (0-3).
    """
    zones = np.asarray(zones, dtype=bool)
    scores = np.asarray(scores, dtype=np.float32)
    if zones.shape[0] != len(ZONES) or scores.shape != (len(ZONES),):
        raise InputShapeError(
            f"zones must be (6, H, W) and scores (6,), got {zones.shape} and {scores.shape}"
        )
    return severity.severity_map(zones, scores).numpy().astype(np.float32)


def _read_v7labs(member: str, sha256: str) -> np.ndarray:
    path = v7labs_zip()
    with zipfile.ZipFile(path) as zf:
        try:
            data = zf.read(member)
        except KeyError:
            raise DataUnavailableError(f"{member} is not in {path}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ChecksumError(f"{member} in {path}: expected sha256 {sha256}, got {actual}")
    return read_binary_mask(data)


def _read_lungvae(path: str, sha256: str) -> np.ndarray:
    return read_binary_mask(fetch(COHEN, path, sha256))


MASK_READERS = {
    "v7labs": lambda row: _read_v7labs(row["v7labs_mask"], row["v7labs_mask_sha256"]),
    "lungVAE": lambda row: _read_lungvae(row["lungvae_mask"], row["lungvae_mask_sha256"]),
}


def read_lung_mask(row: pd.Series | dict, size: int | None = 224) -> np.ndarray:
    """The lung mask of a manifest row, aligned with ``read_image(path, size)``: bool ``(S, S)``.

    A mask whose shape differs from the image's (``height``, ``width``) is first resized to it
    (nearest neighbour), then center cropped and resized exactly as the image is.

    Raises:
        DataUnavailableError: the row has no lung mask (``lung_mask_source == ""``).
    """
    source = row["lung_mask_source"] or ""
    if source not in MASK_READERS:
        raise DataUnavailableError(f"{row['filename']} has no lung mask; it is excluded from zone metrics")
    mask = MASK_READERS[source](row)
    shape = (int(row["height"]), int(row["width"]))
    if mask.shape != shape:
        mask = skimage.transform.resize(mask.astype(np.float32), shape, order=0, anti_aliasing=False) > 0.5
    return crop_resize_mask(mask, size)
