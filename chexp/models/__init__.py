"""Model interfaces (:mod:`.base`), loaders of the papers' torchxrayvision models (:mod:`.xrv`),
the project's own small architectures (:mod:`.small`) and their storage (:mod:`.store`)."""

from .base import OUTPUT_KINDS, Autoencoder, Classifier, OutputKind

__all__ = ["Autoencoder", "Classifier", "OutputKind", "OUTPUT_KINDS"]
