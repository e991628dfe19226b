"""Training the project's own models, cached by a hash of their configuration.

One loop (:func:`fit`), one configuration family (:mod:`.configs`), one trainer per architecture
(:func:`~.classifier.train_classifier`, :func:`~.autoencoder.train_autoencoder`), used for

* phantom radiographs (:mod:`.phantom`): :func:`phantom_classifier`, :func:`phantom_autoencoder`,
  CheXplain-IBA Table 3's BCE / weighted-BCE pair :func:`imbalanced_classifier` and the phantom
  severity regressor :func:`phantom_regressor` (its target: :mod:`.severity`);
* the Cohen / BrixIA radiographs (:mod:`.cohen`): :func:`brixia_regressor`, :func:`brixia_detectors`
  and :func:`cohen_autoencoder`.

The first call of an entry point trains (a few minutes on 2 CPU cores for the phantom models, with
a progress bar; on ``device``, default the CPU) and saves to ``$CHEXP_CACHE_DIR/models/<name>-<hash>/``
(:mod:`.cache`), later calls load; the model comes back on the CPU with its card at ``model.card``.
The hash covers every setting that changes the result (architecture, data, seed, schedule), so a
changed configuration never loads a stale model. Training is seeded and deterministic on CPU.
"""

from __future__ import annotations

from .cache import cached_model, config_hash
from .cohen import brixia_detectors, brixia_regressor, cohen_autoencoder
from .configs import (
    AutoencoderTraining,
    ClassifierTraining,
    CohenAutoencoderTraining,
    CohenTraining,
    ConvAutoencoderTraining,
    ImbalancedTraining,
    PhantomRegressionTraining,
    PhantomTraining,
    Training,
)
from .fit import fit
from .phantom import (
    imbalanced_classifier,
    phantom_autoencoder,
    phantom_classifier,
    phantom_regressor,
    phantom_training_images,
)

__all__ = [
    "AutoencoderTraining",
    "ClassifierTraining",
    "CohenAutoencoderTraining",
    "CohenTraining",
    "ConvAutoencoderTraining",
    "ImbalancedTraining",
    "PhantomRegressionTraining",
    "PhantomTraining",
    "Training",
    "brixia_detectors",
    "brixia_regressor",
    "cached_model",
    "cohen_autoencoder",
    "config_hash",
    "fit",
    "imbalanced_classifier",
    "phantom_autoencoder",
    "phantom_classifier",
    "phantom_regressor",
    "phantom_training_images",
]
