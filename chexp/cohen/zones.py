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
left half, radiological convention), D, E, F the left lung (image right).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence

import numpy as np
import pandas as pd
import skimage.measure
import skimage.transform

from ..data.images import crop_resize_mask
from ..data.remote import fetch
from ..errors import ChecksumError, DataUnavailableError, InputShapeError, InvalidMaskError
from .manifest import COHEN, ZONES, read_binary_mask, v7labs_zip

#: second-largest component must be at least this share of the largest to count as a lung
MIN_LUNG_RATIO = 0.2


def unmasked(manifest: pd.DataFrame) -> pd.DataFrame:
    """Rows without a lung mask (excluded from zone-based metrics)."""
    return manifest[manifest["lung_mask_source"].fillna("") == ""]


def split_lungs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a 2-D bool lung mask into ``(right_lung, left_lung)`` in the *patient's* terms.

    The patient's right lung is on the image's left. With two large connected components
    (the second at least :data:`MIN_LUNG_RATIO` of the first), each is a lung, ordered by
    centroid column, and smaller fragments join the lung on their side of the midpoint between
    the two centroids. With one large component (lungs touching), the mask is cut at the column
    of least mask between 30 % and 70 % of its width.

    Raises:
        InvalidMaskError: the mask is empty or one side of the cut is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise InvalidMaskError(f"lung mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        raise InvalidMaskError("lung mask is empty")
    labels = skimage.measure.label(mask, connectivity=2)
    props = sorted(skimage.measure.regionprops(labels), key=lambda p: -p.area)
    cols = np.arange(mask.shape[1])
    if len(props) >= 2 and props[1].area >= MIN_LUNG_RATIO * props[0].area:
        first, second = sorted(props[:2], key=lambda p: p.centroid[1])
        cut = (first.centroid[1] + second.centroid[1]) / 2
        image_left = labels == first.label
        for p in props[2:]:
            if p.centroid[1] < cut:
                image_left |= labels == p.label
        image_right = mask & ~image_left
    else:
        column_sum = mask.sum(axis=0)
        filled = np.flatnonzero(column_sum)
        x0, x1 = filled[0], filled[-1]
        lo, hi = x0 + int(0.3 * (x1 - x0)), x0 + int(np.ceil(0.7 * (x1 - x0)))
        cut = lo + int(np.argmin(column_sum[lo : hi + 1]))
        image_left = mask & (cols[None, :] < cut)
        image_right = mask & (cols[None, :] >= cut)
    if not image_left.any() or not image_right.any():
        raise InvalidMaskError("lung mask has only one lung")
    return image_left, image_right


def lung_thirds(lung: np.ndarray) -> np.ndarray:
    """Cut one lung ``(H, W)`` into thirds of its own height: bool ``(3, H, W)``, top to bottom.

    Row ``r`` of a lung spanning rows ``r0..r1`` goes to third ``floor(3 (r - r0) / (r1 - r0 + 1))``.
    """
    lung = np.asarray(lung, dtype=bool)
    rows = np.flatnonzero(lung.any(axis=1))
    r0, height = rows[0], rows[-1] - rows[0] + 1
    band = np.full(lung.shape[0], -1)
    band[r0 : r0 + height] = (np.arange(height) * 3) // height
    return np.stack([lung & (band == k)[:, None] for k in range(3)])


def brixia_zones(mask: np.ndarray) -> np.ndarray:
    """BrixIA zones of a lung mask: bool ``(6, H, W)`` in the order A, B, C, D, E, F.

    A-C: the patient's right lung (image left), upper to lower third; D-F: the left lung.
    """
    right, left = split_lungs(mask)
    return np.concatenate([lung_thirds(right), lung_thirds(left)])


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
    return np.tensordot(scores, zones.astype(np.float32), axes=1)


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
