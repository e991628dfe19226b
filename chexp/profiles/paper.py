"""The ``paper`` profile: the papers' own models (torchxrayvision's pretrained DenseNet121 and
ResNetAE101) on NIH / RSNA / SIIM images from a folder the user names."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from ..errors import DataUnavailableError, UnknownNameError, UnsupportedProfileError
from ..models.base import Autoencoder, Classifier, OutputKind
from .base import LazyClassifiers, Profile, SampleSet, register_profile

#: side of the images the pretrained models take
SIZE = 224
#: the classifiers Gifsplanation compares (Table 1, E.1, K.1; Fig. 4 / E.1 show the first and the
#: last): the paper's name -> the name :func:`chexp.models.zoo.load_classifier` loads it by
PAPER_CLASSIFIERS: dict[str, str] = {
    "XRV-all": "densenet121-res224-all",
    "XRV-mimic_ch": "densenet121-res224-mimic_ch",
    "JF Healthcare": "jfhealthcare",
}


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
        """Every pretrained file the profile uses is on disk (downloaded if needed) and matches its
        sha256: :attr:`classifier_name`, the classifiers of :data:`PAPER_CLASSIFIERS` and
        :attr:`autoencoder_name`. Warns when the weights or ``CHEXP_PAPER_DATA`` are the plumbing
        fixture (:mod:`chexp.cohen.paper_fixture`).

        Raises:
            WeightsUnavailableError: naming every missing file (its URL and where to put it).
        """
        from ..cohen.paper_fixture import fixture_warning
        from ..models.xrv import ensure_all_weights

        ensure_all_weights([self.classifier_name, *PAPER_CLASSIFIERS.values(), self.autoencoder_name])
        fixture_warning(os.environ.get("CHEXP_PAPER_DATA"))

    def classifier(self, output: OutputKind = "probability") -> Classifier:
        from ..models.zoo import load_classifier

        return load_classifier(self.classifier_name, output=output)

    def classifiers(self, output: OutputKind = "probability") -> LazyClassifiers:
        """The three classifiers of Gifsplanation's comparisons, by the paper's names
        (:data:`PAPER_CLASSIFIERS`), each loaded (its weights downloaded) when first used."""
        from ..models import zoo

        return LazyClassifiers({label: partial(zoo.load_classifier, name, output=output)
                                for label, name in PAPER_CLASSIFIERS.items()})

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
        """Gifsplanation Table 1 images with their real labels (``data_manifests/gifsplanation_table1.csv.gz``),
        read from ``$CHEXP_PAPER_DATA/<NIH|RSNA|SIIM>`` (each dataset's standard layout).

        * ``task`` given: ``n`` of Table 1's IoU positives of ``task`` (80 in all), with their
          expert boxes/masks in ``masks[task]``.
        * ``task=None``: ``n`` images of Table 1's balanced AUC draw, split evenly over
          :attr:`tasks` and, per task, over true negatives and positives
          (:func:`chexp.cohen.paper_labels.balanced_rows`): ``n = 6 * 2048`` is the paper's AUC
          sample, ``n = 6 * 1000`` Appendix K's 500 + 500 per task. No masks.

        ``labels[i, k]`` is image ``i``'s real label for ``tasks[k]`` when ``i`` was drawn for
        that task and NaN otherwise, so that each task's AUC and Appendix K row use exactly its
        own balanced draw (an image drawn for two tasks appears twice).

        Raises:
            DataUnavailableError: ``CHEXP_PAPER_DATA`` is unset, or images are missing (all named).
            UnknownNameError: ``task`` is not one of :attr:`tasks`.
        """
        from ..cohen.paper import PaperImageFolder
        from ..cohen.paper_labels import balanced_rows, load_table1_manifest

        root = os.environ.get("CHEXP_PAPER_DATA")
        if not root:
            raise DataUnavailableError(
                "the paper profile reads NIH ChestX-ray8, RSNA Pneumonia and SIIM-ACR images from a folder "
                "you download them to: set CHEXP_PAPER_DATA to a folder with sub-folders NIH/, RSNA/, SIIM/ "
                "in each dataset's standard layout (see data_manifests/README.md)"
            )
        if task is not None and task not in self.tasks:
            raise UnknownNameError(task, self.tasks, "paper task")
        table = load_table1_manifest()
        if task is None:
            chosen = balanced_rows(table, self.tasks, n, seed)
        else:
            iou = table[(table["selection"] == "iou") & (table["task"] == task)]
            chosen = iou.sample(n=min(n, len(iou)), random_state=seed).reset_index(drop=True)
        folders, problems = {}, []
        for dataset in chosen["dataset"].unique():  # name every missing folder and file before reading any
            try:
                folders[dataset] = PaperImageFolder(os.path.join(root, dataset), dataset, size=SIZE)
                folders[dataset].check(chosen.loc[chosen["dataset"] == dataset, "image"])
            except DataUnavailableError as err:
                problems.append(str(err))
        if problems:
            raise DataUnavailableError(" | ".join(problems))
        loaded = [folders[r.dataset].load(r.image, r.task) if task else (folders[r.dataset].image(r.image), None)
                  for r in chosen.itertuples()]
        labels = np.full((len(chosen), len(self.tasks)), np.nan, dtype=np.float32)
        labels[np.arange(len(chosen)), [self.tasks.index(t) for t in chosen["task"]]] = chosen["label"]
        images = np.stack([image for image, _ in loaded]) if loaded else np.zeros((0, 1, SIZE, SIZE), np.float32)
        masks = {} if task is None else {
            task: np.stack([mask for _, mask in loaded]) if loaded else np.zeros((0, SIZE, SIZE), bool)}
        return SampleSet(images=torch.from_numpy(images), labels=labels, targets=tuple(self.tasks), masks=masks,
                         ids=list(chosen["image"]), source=self.data_description())

    def data_description(self) -> str:
        return "NIH ChestX-ray8 / RSNA Pneumonia / SIIM-ACR images (their own terms) from a user folder."
