"""The ``paper`` profile: the papers' own models (torchxrayvision's pretrained DenseNet121 and
ResNetAE101) on NIH / RSNA / SIIM images from a folder the user names."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import DataUnavailableError, UnknownNameError, UnsupportedProfileError
from ..models.base import Autoencoder, Classifier, OutputKind
from .base import Profile, SampleSet, register_profile


@register_profile
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
        from ..models.zoo import load_classifier

        return load_classifier(self.classifier_name, output=output)

    def autoencoder(self) -> Autoencoder:
        from ..models.zoo import load_autoencoder

        return load_autoencoder(self.autoencoder_name)

    def training_images(self, n: int) -> torch.Tensor:
        """Not available: the pretrained models' training sets are not part of this profile."""
        raise UnsupportedProfileError(
            f"no training images known for profile {self.name!r} (IBA statistics need them); "
            "use the phantom or cohen profile"
        )

    def bottleneck_autoencoders(
        self, latent_channels: Sequence[int], epochs: int | None = None, n_train: int | None = None,
        progress: bool = True,
    ) -> dict[int, Autoencoder]:
        """Not available: torchxrayvision publishes only the paper's final autoencoder."""
        raise UnsupportedProfileError(
            f"profile {self.name!r} has no bottleneck sweep: torchxrayvision publishes only the paper's "
            "final ResNet101 autoencoder, not the others of Fig. 2; use the phantom or cohen profile"
        )

    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        """The Gifsplanation Table 1 samples of ``task`` (NIH/RSNA/SIIM, ``data_manifests/paper_samples.csv``)
        read from ``$CHEXP_PAPER_DATA/<NIH|RSNA|SIIM>``, with their expert boxes/masks."""
        from ..cohen.paper import SAMPLES, PaperImageFolder, load_paper_manifest

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
