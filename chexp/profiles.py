"""Experiment profiles: which data and models a notebook runs on.

=========  ==============================================================================
profile    data and models
=========  ==============================================================================
phantom    phantom radiographs (held-out stream) with pixel-exact masks; the phantom
           classifier and autoencoder trained by chexp (offline, CPU; the default)
cohen      the Cohen COVID-19 collection with BrixIA scores; models chexp trains on its split
paper      NIH / RSNA / SIIM images from a folder the user names; torchxrayvision's
           pretrained DenseNet121 and ResNetAE101
=========  ==============================================================================

Notebooks call :func:`get_profile` in their first cell and then :meth:`Profile.check` so that a
missing dataset or weight file stops the notebook at once with a message saying what to
download and where to put it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import ChexpError, UnknownNameError
from .models.base import Autoencoder, Classifier, OutputKind


@dataclass
class SampleSet:
    """Images with labels and (where known) ground-truth masks, ready for a model.

    Attributes:
        images: float32 tensor (N, 1, S, S) in [-1024, 1024].
        labels: float32 array (N, T), columns ``targets`` (NaN where unknown).
        targets: label names.
        masks: target name -> bool array (N, S, S) of where that finding is (empty if absent);
            only for targets with ground truth.
        ids: one identifier per image (for tables and provenance).
        source: a sentence naming the data, its version and its licence.
    """

    images: torch.Tensor
    labels: np.ndarray
    targets: tuple[str, ...]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def positives(self, target: str) -> np.ndarray:
        """Indices of the images labelled positive for ``target``."""
        k = self.targets.index(target)
        return np.flatnonzero(self.labels[:, k] == 1)


class Profile(ABC):
    """Where an experiment's data and models come from."""

    name: str
    #: targets that have ground-truth masks (localisation experiments iterate over these)
    tasks: tuple[str, ...] = ()
    #: the target a single-target page explains when its ``target`` parameter is ``None``
    example_target: str = ""

    def check(self) -> None:
        """Raise a clear error now if data or weights this profile needs are missing."""
        self.classifier()

    @abstractmethod
    def classifier(self, output: OutputKind = "probability") -> Classifier: ...

    @abstractmethod
    def autoencoder(self) -> Autoencoder: ...

    @abstractmethod
    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        """``n`` images (positive for ``task`` if given), deterministic by ``seed``."""

    def bottleneck_autoencoders(
        self, latent_channels: Sequence[int], epochs: int | None = None, n_train: int | None = None,
        progress: bool = True,
    ) -> dict[int, Autoencoder]:
        """Autoencoders that differ only in their bottleneck (Gifsplanation Fig. 2 / Appendix D),
        trained by chexp on this profile's training data and cached.

        ``epochs`` / ``n_train``: ``None`` keeps the profile's own schedule.
        """
        raise ChexpError(
            f"profile {self.name!r} has no bottleneck sweep: torchxrayvision publishes only the paper's "
            "final ResNet101 autoencoder, not the others of Fig. 2; use the phantom or cohen profile"
        )

    def describe(self, autoencoder: bool = True) -> str:
        """One paragraph for the page: profile, models and data that produced it.

        ``autoencoder=False`` leaves the autoencoder out (pages that do not use it; loading it
        could mean training it).
        """
        models = f"Classifier: {_model_name(self.classifier())}"
        if autoencoder:
            models += f"; autoencoder: {_model_name(self.autoencoder())}"
        return f"Profile **{self.name}**. {models}. Data: {self.data_description()}"

    def data_description(self) -> str:
        return ""


def _model_name(model: torch.nn.Module) -> str:
    card = getattr(model, "card", None)
    if card is not None:
        return f"{card.name} (config {card.config_hash}, trained by chexp)"
    inner = getattr(model, "model", model)
    return repr(inner) if len(repr(inner)) < 80 else type(inner).__name__


class PhantomProfile(Profile):
    """Phantom radiographs and models trained on them (see :mod:`chexp.training`)."""

    name = "phantom"
    example_target = "Cardiomegaly"
    #: the phantom stream's held-out range: samples start here (training uses 0..n_train)
    TEST_START = 2_000_000

    def __init__(self, size: int = 128, latent_channels: int | None = None) -> None:
        from .phantoms import FINDINGS

        self.size = size
        self.latent_channels = latent_channels
        self.tasks = FINDINGS

    def _phantom_config(self):
        from .phantoms import PhantomConfig

        return PhantomConfig(size=self.size)

    def classifier(self, output: OutputKind = "probability") -> Classifier:
        from .training import ClassifierTraining, phantom_classifier

        return phantom_classifier(ClassifierTraining(phantom=self._phantom_config())).with_output(output)

    def autoencoder(self) -> Autoencoder:
        from .training import AutoencoderTraining, phantom_autoencoder

        kwargs = {} if self.latent_channels is None else {"latent_channels": self.latent_channels}
        return phantom_autoencoder(AutoencoderTraining(phantom=self._phantom_config(), **kwargs))

    def bottleneck_autoencoders(
        self, latent_channels: Sequence[int], epochs: int | None = None, n_train: int | None = None,
        progress: bool = True,
    ) -> dict[int, Autoencoder]:
        """The phantom sweep (:func:`chexp.experiments.gifsplanation.bottleneck_autoencoders`:
        depth 4, width 8, ``epochs`` 2 and ``n_train`` 1000 unless given)."""
        from .experiments.gifsplanation import bottleneck_autoencoders

        return bottleneck_autoencoders(latent_channels, epochs=2 if epochs is None else int(epochs),
                                       n_train=1000 if n_train is None else int(n_train),
                                       image_size=self.size, progress=progress)

    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        from .phantoms import FINDINGS, generate

        start = self.TEST_START + 100_000 * seed
        if task is None:
            ps = generate(n, seed=0, config=self._phantom_config(), start=start)
        else:
            if task not in FINDINGS:
                raise UnknownNameError(task, FINDINGS, "phantom finding")
            k = FINDINGS.index(task)
            chunks, found = [], 0
            while found < n:  # draw until n positives (prevalence ~0.3: ~3.3 n draws)
                batch = generate(max(4 * (n - found), 16), seed=0, config=self._phantom_config(), start=start)
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


def _concat(sets):
    from .phantoms.dataset import PhantomSet

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


class PaperProfile(Profile):
    """torchxrayvision's pretrained models (XRV-all DenseNet121, ResNetAE101); real datasets."""

    name = "paper"
    example_target = "Mass"  # Gifsplanation's Fig. 1
    tasks = ("Atelectasis", "Cardiomegaly", "Effusion", "Mass", "Lung Opacity", "Pneumothorax")

    def __init__(self, classifier_name: str = "densenet121-res224-all", autoencoder_name: str = "101-elastic") -> None:
        self.classifier_name = classifier_name
        self.autoencoder_name = autoencoder_name

    def check(self) -> None:
        self.classifier()
        self.autoencoder()

    def classifier(self, output: OutputKind = "probability") -> Classifier:
        from .models.zoo import load_classifier

        return load_classifier(self.classifier_name, output=output)

    def autoencoder(self) -> Autoencoder:
        from .models.zoo import load_autoencoder

        return load_autoencoder(self.autoencoder_name)

    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        """The Gifsplanation Table 1 samples of ``task`` (NIH/RSNA/SIIM, ``data_manifests/paper_samples.csv``)
        read from ``$CHEXP_PAPER_DATA/<NIH|RSNA|SIIM>``, with their expert boxes/masks."""
        import os

        from .cohen.paper import SAMPLES, PaperImageFolder, load_paper_manifest
        from .errors import DataUnavailableError

        root = os.environ.get("CHEXP_PAPER_DATA")
        if not root:
            raise DataUnavailableError(
                "the paper profile reads NIH ChestX-ray8, RSNA Pneumonia and SIIM-ACR images from a folder "
                "you download them to: set CHEXP_PAPER_DATA to a folder with sub-folders NIH/, RSNA/, SIIM/ "
                "in each dataset's standard layout (see data_manifests/README.md)"
            )
        table = load_paper_manifest(SAMPLES)
        table = table[table["selection"] == "gifsplanation-table1"]
        tasks = list(table["task"].unique())
        if task is not None and task not in tasks:
            raise UnknownNameError(task, tasks, "paper task")
        chosen = table if task is None else table[table["task"] == task]
        chosen = chosen.sample(n=min(n, len(chosen)), random_state=seed)
        images, masks = [], []
        for row in chosen.itertuples():
            folder = PaperImageFolder(os.path.join(root, row.dataset), row.dataset, size=224)
            image, mask = folder.load(row.image)
            images.append(image)
            masks.append(mask)
        names = tuple(tasks)
        labels = np.array([[float(t == r.task) for t in names] for r in chosen.itertuples()], dtype=np.float32)
        mask_arr = np.stack(masks) if masks else np.zeros((0, 224, 224), bool)
        return SampleSet(
            images=torch.from_numpy(np.stack(images)) if images else torch.zeros(0, 1, 224, 224),
            labels=labels,
            targets=names,
            masks={t: np.where((labels[:, k] == 1)[:, None, None], mask_arr, False) for k, t in enumerate(names)},
            ids=list(chosen["image"]),
            source=self.data_description(),
        )

    def data_description(self) -> str:
        return "NIH ChestX-ray8 / RSNA Pneumonia / SIIM-ACR images (their own terms) from a user folder."


PROFILES: dict[str, type[Profile]] = {"phantom": PhantomProfile, "paper": PaperProfile}


def register_profile(cls: type[Profile]) -> type[Profile]:
    PROFILES[cls.name] = cls
    return cls


def get_profile(name: str, **kwargs: Any) -> Profile:
    """The profile ``name`` (``phantom``, ``cohen``, ``paper``)."""
    if name == "cohen" and "cohen" not in PROFILES:
        from .cohen import profile as _  # noqa: F401  (registers itself)
    try:
        cls = PROFILES[name]
    except KeyError:
        raise UnknownNameError(name, list(PROFILES) + ["cohen"], "profile") from None
    return cls(**kwargs)
