"""A torch :class:`~torch.utils.data.Dataset` of the Cohen / BrixIA radiographs.

Every image is obtained through :func:`chexp.data.remote.fetch` with its manifest URL and sha256
(downloaded with a progress bar on a user's machine, found already present when
``CHEXP_DATA_DIR`` mirrors the sources) and read by :func:`chexp.data.images.read_image` into the
torchxrayvision convention: float32 ``(1, S, S)`` in [-1024, 1024], center cropped and resized.

The images are research-only and non-commercial (per-image licences in the manifest).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..data.images import read_image
from ..data.remote import fetch
from ..errors import IndexOutOfRangeError, InvalidParameterError
from ..progress import tqdm
from .manifest import COHEN, RATERS, global_column, load_manifest, zone_columns
from .splits import SPLITS
from .zones import brixia_zones, read_lung_mask

#: the three BrixIA "detectors" of CheXplain-IBA: does some zone have a score of 3 / 2 / 0-1
DETECTOR_TARGETS: tuple[str, ...] = ("zone score 3", "zone score 2", "zone score 0-1")
DETECTOR_SCORES: tuple[tuple[int, ...], ...] = ((3,), (2,), (0, 1))


def detector_labels(zone_scores: np.ndarray) -> np.ndarray:
    """Detector labels ``(N, 3)`` float32 from zone scores ``(N, 6)`` (one rater)."""
    zone_scores = np.asarray(zone_scores)
    return np.stack(
        [np.isin(zone_scores, values).any(axis=1) for values in DETECTOR_SCORES], axis=1
    ).astype(np.float32)


def select_rows(
    manifest: pd.DataFrame | None = None,
    split: str | Sequence[str] | None = None,
    brixia_only: bool = False,
    masked_only: bool = False,
) -> pd.DataFrame:
    """Manifest rows of some split(s), optionally only those both raters scored / with a mask."""
    df = load_manifest() if manifest is None else manifest
    if split is not None:
        wanted = [split] if isinstance(split, str) else list(split)
        unknown = set(wanted) - set(SPLITS)
        if unknown:
            raise InvalidParameterError(f"split: unknown split(s) {sorted(unknown)}; valid: {', '.join(SPLITS)}")
        df = df[df["split"].isin(wanted)]
    if brixia_only:
        df = df[df["S_global"].notna() & df["J_global"].notna()]
    if masked_only:
        df = df[df["lung_mask_source"] != ""]
    return df.reset_index(drop=True)


def image_path(row: pd.Series | dict, progress: bool = True):
    """Local, checksum-verified path of a row's image (downloaded if missing)."""
    return fetch(COHEN, row["path"], row["sha256"], progress=progress)


class CohenDataset(Dataset):
    """Cohen-collection radiographs with BrixIA scores and (optionally) lung masks and zones.

    Args:
        split: ``"train"``, ``"val"``, ``"test"``, several of them, or ``None`` for all.
        size: image side after center crop and resize.
        manifest: a manifest DataFrame (default: the committed one).
        brixia_only: keep only images both raters scored.
        with_masks: also return the lung mask and BrixIA zones (``has_mask`` False and all-zero
            masks for images without one).
        preload: read every image once at construction (with a progress bar) and keep them in
            memory: ``(N, 1, S, S)`` float32, about 0.2 MB per image at 224.

    Each item is a dict: ``image`` float32 ``(1, S, S)`` in [-1024, 1024]; ``zone_scores``
    float32 ``(2, 6)`` (raters S, J; zones A-F; NaN where not scored); ``global_score`` float32
    ``(2,)``; ``index`` (row in :attr:`rows`); with masks, ``lungs`` bool ``(S, S)``, ``zones``
    bool ``(6, S, S)`` and ``has_mask``.
    """

    def __init__(
        self,
        split: str | Sequence[str] | None = None,
        size: int = 224,
        manifest: pd.DataFrame | None = None,
        brixia_only: bool = False,
        with_masks: bool = False,
        preload: bool = False,
    ) -> None:
        self.rows = select_rows(manifest, split, brixia_only=brixia_only)
        self.size = size
        self.with_masks = with_masks
        scores = [self.rows[zone_columns(r)].to_numpy(dtype=float, na_value=np.nan) for r in RATERS]
        self.zone_scores = np.stack(scores, axis=1).astype(np.float32)  # (N, 2, 6)
        self.global_scores = np.stack(
            [self.rows[global_column(r)].to_numpy(dtype=float, na_value=np.nan) for r in RATERS],
            axis=1,
        ).astype(np.float32)
        self._images: np.ndarray | None = None
        if preload:
            self._images = self.load_images()

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as float32 ``(1, S, S)`` in [-1024, 1024]."""
        return read_image(image_path(self.rows.iloc[index]), size=self.size)

    def load_images(self, progress: bool = True) -> np.ndarray:
        """All images as float32 ``(N, 1, S, S)`` (read once each, with a progress bar)."""
        if self._images is not None:
            return self._images
        out = np.empty((len(self), 1, self.size, self.size), dtype=np.float32)
        for i in tqdm(range(len(self)), desc="reading radiographs", disable=not progress):
            out[i] = self.read(i)
        return out

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexOutOfRangeError(f"index {index} out of range for {len(self)} images")
        image = self._images[index] if self._images is not None else self.read(index)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "zone_scores": torch.from_numpy(self.zone_scores[index]),
            "global_score": torch.from_numpy(self.global_scores[index]),
            "index": index,
        }
        if self.with_masks:
            row = self.rows.iloc[index]
            has_mask = row["lung_mask_source"] != ""
            lungs = read_lung_mask(row, self.size) if has_mask else np.zeros((self.size,) * 2, bool)
            zones = brixia_zones(lungs) if has_mask else np.zeros((6, self.size, self.size), bool)
            item.update(lungs=torch.from_numpy(lungs), zones=torch.from_numpy(zones), has_mask=has_mask)
        return item
