"""The ``phantom`` profile: phantom radiographs (a held-out stream) with pixel-exact masks, and
the classifier and autoencoders chexp trains on them (offline, CPU; the default profile)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import UnknownNameError
from ..models.base import Autoencoder, Classifier, OutputKind
from ..phantoms import FINDINGS, PhantomConfig, PhantomSet, generate
from .base import LazyClassifiers, Profile, SampleSet, bottleneck_sweep, register_profile

if TYPE_CHECKING:
    from ..training import ClassifierTraining

#: The shortcut of :meth:`PhantomProfile.shortcut_trainings`: P(device | Pneumothorax) = 0.9,
#: P(device | no Pneumothorax) = 0.05.
SHORTCUT_COOCCURRENCE: tuple[str, float, float] = ("Pneumothorax", 0.9, 0.05)


@register_profile
class PhantomProfile(Profile):
    """Phantom radiographs and models trained on them (see :mod:`chexp.training`).

    Args:
        size: image side S of the phantoms and the models (pixels).
        latent_channels: bottleneck of :meth:`autoencoder` (``None``: the training default).
    """

    name = "phantom"
    tasks = FINDINGS
    example_target = "Cardiomegaly"
    #: the phantom stream's held-out range: samples start here (training uses 0..n_train)
    TEST_START = 2_000_000

    def __init__(self, size: int = 128, latent_channels: int | None = None) -> None:
        self.size = size
        self.latent_channels = latent_channels

    @property
    def phantom(self) -> PhantomConfig:
        """The phantom generator settings of this profile's data and models (they enter the
        models' cache keys)."""
        return PhantomConfig(size=self.size)

    def classifier(self, output: OutputKind = "probability") -> Classifier:
        from ..training import ClassifierTraining, phantom_classifier

        model = phantom_classifier(ClassifierTraining(phantom=self.phantom), device=self.train_device)
        return model.with_output(output)

    def autoencoder(self) -> Autoencoder:
        from ..training import AutoencoderTraining, phantom_autoencoder

        kwargs = {} if self.latent_channels is None else {"latent_channels": self.latent_channels}
        return phantom_autoencoder(AutoencoderTraining(phantom=self.phantom, **kwargs), device=self.train_device)

    def shortcut_trainings(
        self, cooccurrence: tuple[str, float, float] = SHORTCUT_COOCCURRENCE, n_train: int = 1500, n_val: int = 400,
        epochs: int = 4,
    ) -> dict[str, ClassifierTraining]:
        """The training settings of a shortcut classifier and its clean twin (shortcut chapter).

        ``"shortcut"`` trains on phantoms whose support devices co-occur with a finding
        (``cooccurrence``: ``(finding, P(device | finding), P(device | no finding))``, see
        :class:`~chexp.phantoms.PhantomConfig`); ``"clean"`` on the same recipe (same sample
        streams, seed and schedule) with devices independent of every finding (prevalence 0.3,
        about the shortcut set's overall device rate). A smaller schedule than :meth:`classifier`'s
        (``n_train`` 1500, ``epochs`` 4: about a minute each on 2 CPU cores), cached separately.
        """
        from ..training import ClassifierTraining

        def training(phantom: PhantomConfig) -> ClassifierTraining:
            return ClassifierTraining(phantom=phantom, n_train=n_train, n_val=n_val, epochs=epochs)

        return {"shortcut": training(PhantomConfig(size=self.size, device_cooccurrence=cooccurrence)),
                "clean": training(self.phantom)}

    def shortcut_classifiers(
        self, output: OutputKind = "probability", **trainings: object
    ) -> LazyClassifiers:
        """The classifiers of :meth:`shortcut_trainings` (its keyword arguments: ``trainings``),
        ``"shortcut"`` and ``"clean"``, each trained on first use and cached by its configuration."""
        from ..training import phantom_classifier

        def load(cfg: ClassifierTraining) -> Classifier:
            return phantom_classifier(cfg, device=self.train_device).with_output(output)

        return LazyClassifiers({name: partial(load, cfg)
                                for name, cfg in self.shortcut_trainings(**trainings).items()})  # type: ignore[arg-type]

    def training_images(self, n: int) -> torch.Tensor:
        """The first ``n`` phantoms of the classifier's training stream (seed 0, from index 0)."""
        return torch.from_numpy(generate(n, seed=0, config=self.phantom).images)

    def bottleneck_autoencoders(
        self, latent_channels: Sequence[int], epochs: int | None = None, n_train: int | None = None,
        progress: bool = True,
    ) -> dict[int, Autoencoder]:
        """Phantom autoencoders that differ only in their bottleneck, trained once and cached.

        All share the same cheap schedule (``epochs`` 2 on ``n_train`` 1000 phantoms unless
        given; each well under a minute on 2 CPU cores) so that only the bottleneck differs. The
        architecture is the small depth-4, width-8 one (latent ``c x 8 x 8`` at 128 pixels), so the
        sweep spans tight to loose bottlenecks.
        """
        from ..training import AutoencoderTraining, phantom_autoencoder

        schedule = {"epochs": 2 if epochs is None else int(epochs),
                    "n_train": 1000 if n_train is None else int(n_train)}

        def train(c: int) -> Autoencoder:
            cfg = AutoencoderTraining(phantom=self.phantom, latent_channels=c, depth=4, width=8, **schedule)
            return phantom_autoencoder(cfg, progress=False, device=self.train_device)

        return bottleneck_sweep(latent_channels, train, progress)

    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        start = self.TEST_START + 100_000 * seed
        if task is None:
            ps = generate(n, seed=0, config=self.phantom, start=start)
        else:
            if task not in FINDINGS:
                raise UnknownNameError(task, FINDINGS, "phantom finding")
            k = FINDINGS.index(task)
            chunks, found = [], 0
            while found < n:  # draw until n positives (prevalence ~0.3: ~3.3 n draws)
                batch = generate(max(4 * (n - found), 16), seed=0, config=self.phantom, start=start)
                start += len(batch)
                rows = np.flatnonzero(batch.labels[:, k] == 1)[: n - found]
                chunks.append(batch.subset(rows))
                found += len(rows)
            ps = _concat(chunks)
        return SampleSet(
            images=torch.from_numpy(ps.images),
            labels=ps.labels,
            targets=FINDINGS,
            masks={f: ps.masks[:, k] for k, f in enumerate(FINDINGS)},
            ids=[f"phantom-{i}" for i in range(len(ps))],
            source=self.data_description(),
            extra={"lungs": ps.lungs, "heart": ps.heart, "phantoms": ps},
        )

    def data_description(self) -> str:
        return (
            f"synthetic phantom radiographs ({self.size} x {self.size}, chexp.phantoms; held-out "
            "samples never used in training), Apache-2.0."
        )


def _concat(sets: Sequence[PhantomSet]) -> PhantomSet:
    first = sets[0]
    return PhantomSet(
        np.concatenate([s.images for s in sets]),
        np.concatenate([s.labels for s in sets]),
        np.concatenate([s.masks for s in sets]),
        np.concatenate([s.lungs for s in sets]),
        np.concatenate([s.heart for s in sets]),
        first.config,
        first.seed,
        -1,
        first.disable,
        {k: np.concatenate([s.params[k] for s in sets]) for k in first.params},
    )
