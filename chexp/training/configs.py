"""Training configurations: one frozen dataclass family, every field part of the cache key.

``Training`` (the optimisation schedule every trainer shares) is specialised by where the images
come from (:class:`PhantomTraining`: generated phantoms; :class:`CohenTraining`: the Cohen / BrixIA
radiographs) and by the model (:class:`ConvAutoencoderTraining`: the autoencoder's bottleneck).
The concrete configurations set their own defaults:

* :class:`ClassifierTraining`: :func:`~chexp.training.phantom_classifier`;
* :class:`ImbalancedTraining`: :func:`~chexp.training.imbalanced_classifier`;
* :class:`PhantomRegressionTraining`: :func:`~chexp.training.phantom_regressor` (its
  :class:`RegressionHead`: loss and output layer, also an argument of
  :func:`~chexp.training.brixia_regressor`);
* :class:`AutoencoderTraining`: :func:`~chexp.training.phantom_autoencoder`;
* :class:`CohenTraining`: :func:`~chexp.training.brixia_regressor`, :func:`~chexp.training.brixia_detectors`;
* :class:`CohenAutoencoderTraining`: :func:`~chexp.training.cohen_autoencoder`.

A model is cached under a hash of :meth:`Training.cache_key` (plus the model code version), so the
set of fields and their values are part of every cached model's name: adding, renaming or
re-defaulting a field changes which cached models are found.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pooch
import torch

from ..cohen.manifest import MANIFEST_PATH
from ..errors import InvalidParameterError
from ..phantoms import PhantomConfig, generate
from .severity import ZONE_THRESHOLDS

__all__ = [
    "AutoencoderTraining",
    "ClassifierTraining",
    "CohenAutoencoderTraining",
    "CohenTraining",
    "ConvAutoencoderTraining",
    "ImbalancedTraining",
    "PhantomRegressionTraining",
    "PhantomTraining",
    "REGRESSION_LOSSES",
    "RegressionHead",
    "Training",
    "generator_fingerprint",
]


def generator_fingerprint(phantom: PhantomConfig) -> str:
    """sha256 of two probe phantoms: changes whenever the generator's code changes its output,
    so that a cached model is never reused for different data."""
    return generate(2, seed=12345, config=phantom).sha256()


@dataclass(frozen=True, kw_only=True)
class Training:
    """The schedule every trainer shares: AdamW with a one-cycle learning rate (:func:`chexp.training.fit`).

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step.
        lr: peak learning rate of the one-cycle schedule.
        seed: seed of the initialisation, the batch order and any augmentation.
    """

    epochs: int
    batch_size: int
    lr: float
    seed: int = 0

    def settings(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (the ``config`` of the model card)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def cache_key(self) -> dict[str, Any]:
        """What identifies the trained model: :meth:`settings` plus a fingerprint of the data source."""
        return self.settings()


@dataclass(frozen=True, kw_only=True)
class PhantomTraining(Training):
    """Training on generated phantoms (:mod:`chexp.phantoms`).

    Attributes:
        phantom: the generator's settings (its ``size`` is the model's input side).
        n_train: training phantoms (stream ``seed``, from index 0).
        n_val: held-out phantoms (stream ``seed + VALIDATION_SEED_OFFSET``).
    """

    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    n_train: int
    n_val: int

    def cache_key(self) -> dict[str, Any]:
        return self.settings() | {"generator": generator_fingerprint(self.phantom)}


@dataclass(frozen=True, kw_only=True)
class ConvAutoencoderTraining(Training):
    """The bottleneck of a :class:`~chexp.models.small.ConvAutoencoder`: a latent of
    ``latent_channels x (S / 2**depth) x (S / 2**depth)`` values; ``width`` channels after the
    first downsampling."""

    latent_channels: int
    width: int
    depth: int

    def architecture(self, input_size: int) -> dict[str, Any]:
        """The :class:`~chexp.models.small.ConvAutoencoder` arguments for images of side ``input_size``."""
        return {"latent_channels": self.latent_channels, "width": self.width, "depth": self.depth,
                "input_size": input_size}


@dataclass(frozen=True, kw_only=True)
class ClassifierTraining(PhantomTraining):
    """Settings of :func:`~chexp.training.phantom_classifier`: a
    :class:`~chexp.models.small.SmallClassifier` with block widths ``channels``."""

    n_train: int = 3000
    n_val: int = 1000
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    channels: tuple[int, ...] = (16, 16, 32, 64, 64)
    #: AdamW weight decay of every phantom classifier (fixed: not a setting, not in the cache key).
    weight_decay: ClassVar[float] = 1e-4


@dataclass(frozen=True, kw_only=True)
class ImbalancedTraining(ClassifierTraining):
    """Settings of CheXplain-IBA Table 3's pair (:func:`~chexp.training.imbalanced_classifier`):
    phantoms with prevalence 0.1 per finding."""

    phantom: PhantomConfig = field(default_factory=lambda: PhantomConfig(prevalence=0.1))
    n_train: int = 1200
    n_val: int = 400
    epochs: int = 4
    lr: float = 3e-3


RegressionLoss = Literal["mse", "l1"]
#: loss name -> ``loss(outputs (B, 1), targets (B,))``, a scalar: the mean squared error (the
#: paper's and the released code's ``nn.MSELoss``) or the mean absolute error.
REGRESSION_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": lambda out, target: ((out[:, 0] - target) ** 2).mean(),
    "l1": lambda out, target: (out[:, 0] - target).abs().mean(),
}


@dataclass(frozen=True)
class RegressionHead:
    """How a regression stand-in (one ``"score"`` output) is trained and what its last layer is.

    The defaults follow CheXplain-IBA: the paper models regression "with a MSE loss", and the
    released regressor (``model/model.py``) trains with ``nn.MSELoss`` a head
    ``nn.Sequential(nn.Linear(n, 1), nn.ReLU())``, so its scores are never negative.

    Attributes:
        loss: ``"mse"`` or ``"l1"`` (:data:`REGRESSION_LOSSES`).
        relu: end the head with a ReLU (:class:`~chexp.models.small.SmallClassifier`'s ``relu_output``).

    Raises:
        InvalidParameterError: ``loss`` is not a key of :data:`REGRESSION_LOSSES`.
    """

    loss: RegressionLoss = "mse"
    relu: bool = True

    def __post_init__(self) -> None:
        if self.loss not in REGRESSION_LOSSES:
            raise InvalidParameterError(f"loss must be one of {', '.join(REGRESSION_LOSSES)}, got {self.loss!r}")

    def loss_function(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``loss(outputs (B, 1), targets (B,))`` -> scalar (:data:`REGRESSION_LOSSES`)."""
        return REGRESSION_LOSSES[self.loss]

    def architecture(self) -> dict[str, Any]:
        """The :class:`~chexp.models.small.SmallClassifier` arguments this head sets."""
        return {"relu_output": self.relu}


@dataclass(frozen=True, kw_only=True)
class PhantomRegressionTraining(ClassifierTraining):
    """Settings of :func:`~chexp.training.phantom_regressor`; ``thresholds``: the zone-share cut
    points of the phantom severity score (:func:`chexp.training.severity.zone_scores`); ``head``:
    its loss and last layer (default MSE and Linear + ReLU, as CheXplain-IBA)."""

    n_train: int = 1200
    n_val: int = 300
    epochs: int = 4
    lr: float = 3e-3
    thresholds: tuple[float, float, float] = ZONE_THRESHOLDS
    head: RegressionHead = field(default_factory=RegressionHead)


@dataclass(frozen=True, kw_only=True)
class AutoencoderTraining(PhantomTraining, ConvAutoencoderTraining):
    """Settings of :func:`~chexp.training.phantom_autoencoder`."""

    latent_channels: int = 2
    width: int = 16
    depth: int = 2
    n_train: int = 2000
    n_val: int = 500
    epochs: int = 5
    batch_size: int = 32
    lr: float = 2e-3
    #: AdamW weight decay of every phantom autoencoder (fixed: not a setting, not in the cache key).
    weight_decay: ClassVar[float] = 1e-5


@dataclass(frozen=True, kw_only=True)
class CohenTraining(Training):
    """Settings of a model trained on the Cohen / BrixIA radiographs' training split
    (:func:`~chexp.training.brixia_regressor`, :func:`~chexp.training.brixia_detectors`).

    Attributes:
        size: image side (128 or 224 are CPU-feasible; sides must be multiples of 16).
        weight_decay: AdamW weight decay.
        channels: :class:`~chexp.models.small.SmallClassifier` block widths (classifiers and regressor).
        shift: random translation augmentation, in pixels (0: none).
        max_train: use only the first ``max_train`` training images (``None``: all); for tests.
        max_heldout: evaluate on only the first ``max_heldout`` held-out images; for tests.
        manifest: path of the manifest CSV (its sha256, not the path, enters the cache key).
    """

    size: int = 128
    epochs: int = 30
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-3
    channels: tuple[int, ...] = (16, 32, 64, 128)
    shift: int = 8
    max_train: int | None = None
    max_heldout: int | None = None
    manifest: str = str(MANIFEST_PATH)

    def settings(self) -> dict[str, Any]:
        d = super().settings()
        d["manifest_sha256"] = pooch.file_hash(d.pop("manifest"), alg="sha256")  # the content, not where it lies
        return d


@dataclass(frozen=True, kw_only=True)
class CohenAutoencoderTraining(CohenTraining, ConvAutoencoderTraining):
    """Settings of :func:`~chexp.training.cohen_autoencoder`.

    ``latent_channels x (size / 2**depth)**2`` is the bottleneck size (8 x 8 x 8 = 512 at 128).
    """

    epochs: int = 20
    weight_decay: float = 1e-5
    shift: int = 0
    latent_channels: int = 8
    width: int = 32
    depth: int = 4
