"""The ``paper`` profile: the papers' own models (torchxrayvision's pretrained DenseNet121 and
ResNetAE101) on NIH / RSNA / SIIM images from a folder the user names.

:class:`PaperProfile` is Gifsplanation's (its Table 1 images, three classifiers);
:class:`CheXplainPaperProfile` is the same profile as CheXplain-IBA's chapters use it (XRV-all on
the NIH box images of its Table 1, :data:`CHEXPLAIN_FINDINGS`). Both read the NIH training images
of the IBA statistics (:meth:`PaperProfile.training_images`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..errors import DataUnavailableError, UnknownNameError, UnsupportedProfileError
from ..models.base import Autoencoder, Classifier, OutputKind
from .base import LazyClassifiers, Profile, SampleSet, register_profile

if TYPE_CHECKING:
    from ..cohen.paper import PaperImageFolder

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
        """The first ``n`` NIH ChestX-ray8 training images of the committed manifest
        (:func:`chexp.cohen.chexplain_rows.training_rows`: patients without any image a notebook
        explains or scores), read from ``$CHEXP_PAPER_DATA/NIH``: ``(n, 1, 224, 224)`` in
        [-1024, 1024]. CheXplain-IBA fits its IBA statistics on them.

        Raises:
            DataUnavailableError: ``CHEXP_PAPER_DATA`` is unset, or images are missing (all named).
            InvalidParameterError: ``n`` is below 0 or above the manifest's 10,000 rows.
        """
        from ..cohen.chexplain_rows import training_rows

        rows = training_rows(n)
        folders = _image_folders(rows)
        images = [folders[r.dataset].image(r.image) for r in rows.itertuples()]
        return torch.from_numpy(np.stack(images) if images else np.zeros((0, 1, SIZE, SIZE), np.float32))

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
        from ..cohen.paper_labels import balanced_rows, load_table1_manifest

        if task is not None and task not in self.tasks:
            raise UnknownNameError(task, self.tasks, "paper task")
        table = load_table1_manifest()
        if task is None:
            chosen = balanced_rows(table, self.tasks, n, seed)
        else:
            iou = table[(table["selection"] == "iou") & (table["task"] == task)]
            chosen = iou.sample(n=min(n, len(iou)), random_state=seed).reset_index(drop=True)
        labels = np.full((len(chosen), len(self.tasks)), np.nan, dtype=np.float32)
        labels[np.arange(len(chosen)), [self.tasks.index(t) for t in chosen["task"]]] = chosen["label"]
        return self._sample_set(chosen, labels, task)

    def _sample_set(self, chosen: pd.DataFrame, labels: np.ndarray, task: str | None) -> SampleSet:
        """The images of ``chosen`` (columns ``dataset``, ``image``, ``task``: the finding of its
        expert box/mask) with ``labels``; with ``task`` given, their masks as ``masks[task]``."""
        folders = _image_folders(chosen)
        loaded = [folders[r.dataset].load(r.image, r.task) if task else (folders[r.dataset].image(r.image), None)
                  for r in chosen.itertuples()]
        images = np.stack([image for image, _ in loaded]) if loaded else np.zeros((0, 1, SIZE, SIZE), np.float32)
        masks = {} if task is None else {
            task: np.stack([mask for _, mask in loaded]) if loaded else np.zeros((0, SIZE, SIZE), bool)}
        return SampleSet(images=torch.from_numpy(images), labels=labels, targets=tuple(self.tasks), masks=masks,
                         ids=list(chosen["image"]), source=self.data_description())

    def data_description(self) -> str:
        return "NIH ChestX-ray8 / RSNA Pneumonia / SIIM-ACR images (their own terms) from a user folder."


#: CheXplain-IBA Table 1's eight NIH box findings (the paper's names, those of NIH's
#: ``BBox_List_2017.csv``) -> the XRV-all output that predicts each (NIH's label "Infiltration"
#: for the boxes' "Infiltrate").
CHEXPLAIN_FINDINGS: dict[str, str] = {
    "Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly", "Effusion": "Effusion",
    "Infiltrate": "Infiltration", "Mass": "Mass", "Nodule": "Nodule", "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
}


class CheXplainPaperProfile(PaperProfile):
    """The ``paper`` profile as CheXplain-IBA's notebooks (20-26) use it: torchxrayvision's XRV-all
    DenseNet121 explained on the NIH ChestX-ray8 box images of the paper's Table 1 (all eight
    findings, :data:`CHEXPLAIN_FINDINGS`), with IBA statistics fitted on NIH training images
    (:meth:`~PaperProfile.training_images`).

    Not registered: ``get_profile("paper")`` is Gifsplanation's :class:`PaperProfile`, and
    :func:`chexp.experiments.iba_setup.chexplain_profile` builds this one for ``"paper"``.
    :attr:`tasks` are XRV-all's output names of the findings.
    """

    tasks = tuple(CHEXPLAIN_FINDINGS.values())
    example_target = "Mass"  # Fig. 4 left

    def check(self) -> None:
        """Raise now if XRV-all's weights or ``$CHEXP_PAPER_DATA`` are missing (CheXplain-IBA needs
        no autoencoder; missing images are named when a chapter reads them). Warns when either is
        the plumbing fixture (:mod:`chexp.cohen.paper_fixture`)."""
        from ..cohen.paper_fixture import fixture_warning

        self.classifier()
        fixture_warning(_data_root())

    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        """NIH box images of CheXplain-IBA Table 1 (``chexplain-table1`` selection of
        ``data_manifests/paper_samples.csv``, 984 boxes on 880 images) from ``$CHEXP_PAPER_DATA/NIH``.

        * ``task`` given (an XRV-all name of :attr:`tasks`): ``n`` of the images with a box of
          that finding (all of them when ``n`` is larger: 180 Atelectasis, 146 Cardiomegaly, 153
          Effusion, 123 Infiltration, 85 Mass, 79 Nodule, 120 Pneumonia, 98 Pneumothorax), the
          union of their boxes of the finding in ``masks[task]``.
        * ``task=None``: ``n`` distinct box images, no masks.

        ``labels[i, k]`` is 1 where image ``i`` has a box of ``tasks[k]`` and NaN otherwise (a box
        marks a positive, its absence says nothing). Draws are seeded by ``seed``.

        Raises:
            DataUnavailableError: ``CHEXP_PAPER_DATA`` is unset, or images are missing (all named).
            UnknownNameError: ``task`` is not one of :attr:`tasks`.
        """
        from ..cohen.paper import SAMPLES, load_paper_manifest

        if task is not None and task not in self.tasks:
            raise UnknownNameError(task, self.tasks, "CheXplain-IBA task")
        table = load_paper_manifest(SAMPLES)
        table = table[table["selection"] == "chexplain-table1"]
        finding = {name: box for box, name in CHEXPLAIN_FINDINGS.items()}
        pool = table.drop_duplicates("image") if task is None else table[table["task"] == finding[task]]
        chosen = pool.sample(n=min(n, len(pool)), random_state=seed).reset_index(drop=True)
        boxed = table.groupby("image")["task"].agg(set)
        labels = np.full((len(chosen), len(self.tasks)), np.nan, dtype=np.float32)
        for i, image in enumerate(chosen["image"]):
            labels[i, [self.tasks.index(CHEXPLAIN_FINDINGS[f]) for f in boxed[image]]] = 1
        return self._sample_set(chosen, labels, task)

    def data_description(self) -> str:
        return ("NIH ChestX-ray8 box images of CheXplain-IBA Table 1 and NIH training images for the IBA "
                "statistics (NIH's terms) from a user folder.")


def _data_root() -> str:
    """``$CHEXP_PAPER_DATA``; :class:`DataUnavailableError` saying what to put there when unset."""
    root = os.environ.get("CHEXP_PAPER_DATA")
    if not root:
        raise DataUnavailableError(
            "the paper profile reads NIH ChestX-ray8, RSNA Pneumonia and SIIM-ACR images from a folder "
            "you download them to: set CHEXP_PAPER_DATA to a folder with sub-folders NIH/, RSNA/, SIIM/ "
            "in each dataset's standard layout (see data_manifests/README.md)"
        )
    return root


def _image_folders(rows: pd.DataFrame) -> dict[str, PaperImageFolder]:
    """An image folder per dataset of ``rows`` (columns ``dataset``, ``image``), after checking that
    every image is there: one :class:`DataUnavailableError` names every missing folder and file."""
    from ..cohen.paper import PaperImageFolder

    root = _data_root()
    folders, problems = {}, []
    for dataset in rows["dataset"].unique():  # name every missing folder and file before reading any
        try:
            folders[dataset] = PaperImageFolder(os.path.join(root, dataset), dataset, size=SIZE)
            folders[dataset].check(rows.loc[rows["dataset"] == dataset, "image"])
        except DataUnavailableError as err:
            problems.append(str(err))
    if problems:
        raise DataUnavailableError(" | ".join(problems))
    return folders
