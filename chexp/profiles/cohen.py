"""The ``cohen`` experiment profile: real radiographs of the Cohen COVID-19 collection with BrixIA
scores, and the models chexp trains on its training split (:mod:`chexp.training.cohen`).

Targets are the three BrixIA "detectors" (a zone scored 3 / 2 / 0-1 exists). The ground-truth
mask of a detector on an image is the union of the lung zones (A-F, from the lung mask) that
rater S scored with that detector's scores. Images are from the held-out ``test`` split, scored
by both raters and with a lung mask (images without one are excluded, never guessed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..cohen.dataset import DETECTOR_SCORES, DETECTOR_TARGETS, CohenDataset, detector_labels, select_rows
from ..errors import UnknownNameError
from ..models.base import Autoencoder, Classifier, OutputKind
from .base import Profile, SampleSet, bottleneck_sweep, register_profile

if TYPE_CHECKING:
    from ..training import CohenTraining


@register_profile
class CohenProfile(Profile):
    """Cohen COVID-19 radiographs with BrixIA scores and the models chexp trains on them.

    Args:
        size: image side S of the images and the models (pixels).
        split: the patient split :meth:`samples` draws from.
        weighted: use the weighted-BCE detectors as :meth:`classifier`.
    """

    name = "cohen"
    tasks = DETECTOR_TARGETS
    example_target = DETECTOR_TARGETS[0]  # a zone scored 3 exists

    def __init__(self, size: int = 128, split: str = "test", weighted: bool = False) -> None:
        self.size = size
        self.split = split
        self.weighted = weighted

    def _config(self) -> CohenTraining:
        from ..training import CohenTraining

        return CohenTraining(size=self.size)

    def check(self) -> None:
        select_rows(None, self.split, brixia_only=True, masked_only=True)
        self.samples(1)

    def classifier(self, output: OutputKind = "probability") -> Classifier:
        from ..training import brixia_detectors

        return brixia_detectors(self._config(), weighted=self.weighted, device=self.train_device).with_output(output)

    def regressor(self) -> Classifier:
        """The BrixIA global-score regression head (output ``"score"``, 0-18)."""
        from ..training import brixia_regressor

        return brixia_regressor(self._config(), device=self.train_device)

    def autoencoder(self) -> Autoencoder:
        from ..training import CohenAutoencoderTraining, cohen_autoencoder

        return cohen_autoencoder(CohenAutoencoderTraining(size=self.size), device=self.train_device)

    def training_images(self, n: int) -> torch.Tensor:
        """The first ``n`` images of the training split (BrixIA-scored), at the profile's size."""
        from ..training.cohen import load_arrays

        return load_arrays("train", self.size, True, progress=False).images[:n]

    def bottleneck_autoencoders(
        self, latent_channels: Sequence[int], epochs: int | None = None, n_train: int | None = None,
        progress: bool = True,
    ) -> dict[int, Autoencoder]:
        """Real-radiograph autoencoders of the sweep (:func:`chexp.training.cohen.cohen_autoencoder`,
        latent ``c x 8 x 8`` at 128 pixels); ``epochs`` / ``n_train`` override the schedule (20
        epochs, the whole training split) when given."""
        from ..training import CohenAutoencoderTraining, cohen_autoencoder

        cfg = CohenAutoencoderTraining(size=self.size)
        if epochs is not None:
            cfg = dataclasses.replace(cfg, epochs=int(epochs))
        if n_train is not None:
            cfg = dataclasses.replace(cfg, max_train=int(n_train))
        def train(c: int) -> Autoencoder:
            return cohen_autoencoder(cfg, latent_channels=c, progress=False, device=self.train_device)

        return bottleneck_sweep(latent_channels, train, progress)

    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        ds = CohenDataset(self.split, size=self.size, manifest=None, brixia_only=True, with_masks=True)
        keep = np.flatnonzero(ds.rows["lung_mask_source"].to_numpy() != "")
        scores_s = ds.zone_scores[:, 0]  # rater S, (N, 6)
        labels = detector_labels(scores_s)
        if task is not None:
            if task not in DETECTOR_TARGETS:
                raise UnknownNameError(task, DETECTOR_TARGETS, "cohen task")
            keep = keep[labels[keep, DETECTOR_TARGETS.index(task)] == 1]
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.permutation(keep)[: min(n, len(keep))])
        items = [ds[int(i)] for i in chosen]
        images = torch.stack([it["image"] for it in items]) if items else torch.zeros(0, 1, self.size, self.size)
        zones = (np.stack([it["zones"].numpy() for it in items]) if items
                 else np.zeros((0, 6, self.size, self.size), bool))
        masks = {}
        for t, values in zip(DETECTOR_TARGETS, DETECTOR_SCORES, strict=True):
            hit = np.isin(scores_s[chosen], values)  # (n, 6)
            masks[t] = (zones & hit[:, :, None, None]).any(axis=1)
        return SampleSet(
            images=images,
            labels=labels[chosen],
            targets=DETECTOR_TARGETS,
            masks=masks,
            ids=list(ds.rows["path"].iloc[chosen]),
            source=self.data_description(),
            extra={"zones": zones, "zone_scores": ds.zone_scores[chosen],
                   "global_scores": ds.global_scores[chosen],
                   "lungs": np.stack([it["lungs"].numpy() for it in items]) if items else None},
        )

    def data_description(self) -> str:
        return (
            f"Cohen COVID-19 image data collection ({self.split} split, {self.size} x {self.size}) with "
            "BrixIA scores (CC BY-NC-SA 4.0) and lung masks; per-image licences, research-only, non-commercial."
        )
