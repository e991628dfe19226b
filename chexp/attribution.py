"""The base class of every attribution method of chexp (Captum style: one class per method).

A method is built on a :class:`~chexp.models.base.Classifier` (plus what it needs: an
autoencoder, a layer and its statistics) and configured at construction; then, for every
method::

    maps = method.attribute(inputs, target=...)     # (B, 1, H, W)

* ``inputs``: images ``(B, 1, H, W)``, float, in [-1024, 1024], on the model's device.
* ``target``: a :mod:`chexp.targets` target object or a shorthand: ``None`` (the model's only
  output), an output name, a column index, or a list of those (one per image).
* the result: maps ``(B, 1, H, W)``, float, detached, on the inputs' device; units, sign and
  range are documented per method.

Methods with richer results offer them through a second, explicit method
(:meth:`chexp.latentshift.LatentShift.explain`, :meth:`chexp.iba.MultiLayerIBA.attribute_layers`).
:mod:`chexp.methods` lists every method by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from .errors import InvalidTypeError
from .models.base import Classifier
from .targets import TargetLike, as_target

__all__ = ["Attribution"]


class Attribution(ABC):
    """Base class of every attribution method.

    Subclasses implement :meth:`_attribute` on checked inputs; those that check more (IBA's
    statistics and losses, Latent Shift's autoencoder) override :meth:`_prepare`.

    Args:
        model: the classifier to explain. Its :attr:`~Classifier.output` decides which score
            is explained (the papers explain torchxrayvision's calibrated probability).

    Raises:
        InvalidTypeError: ``model`` is not a chexp :class:`~chexp.models.base.Classifier`.
    """

    def __init__(self, model: Classifier) -> None:
        if not isinstance(model, Classifier):
            raise InvalidTypeError(
                f"{type(self).__name__} needs a chexp Classifier, got {type(model).__name__}; wrap "
                "your network in a chexp.models.base.Classifier subclass"
            )
        self.model = model

    def attribute(self, inputs: torch.Tensor, target: TargetLike = None) -> torch.Tensor:
        """Attribution maps for ``target``.

        Args:
            inputs: images ``(B, 1, H, W)``, float, in [-1024, 1024].
            target: a target object, an output name, a column index, a list of those (one per
                image), or ``None``: the model's only output (a model with several outputs
                raises :class:`~chexp.errors.TargetRequiredError`).

        Returns:
            maps ``(B, 1, H, W)``, float, detached, on the inputs' device (units, sign and range
            documented per method).

        Raises:
            InputShapeError / InputRangeError: bad images; UnknownTargetError: a target the
            model does not predict. Both are checked before any heavy work.
        """
        x, tgt = self._prepare(inputs, target)
        return self._attribute(x, tgt).detach()

    def _prepare(self, inputs: torch.Tensor, target: TargetLike) -> tuple[torch.Tensor, Any]:
        """Check ``inputs`` and ``target`` (cheap, before any heavy work); returns the detached
        inputs and the target object."""
        self.model.check_input(inputs)
        tgt = as_target(target)
        tgt.columns(self.model, inputs.shape[0])  # raises UnknownTargetError listing valid names
        return inputs.detach(), tgt

    @abstractmethod
    def _attribute(self, inputs: torch.Tensor, target: Any) -> torch.Tensor:
        """The method itself, on what :meth:`_prepare` returned: maps ``(B, 1, H, W)``."""

    def __call__(self, inputs: torch.Tensor, target: TargetLike = None) -> torch.Tensor:
        return self.attribute(inputs, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"
