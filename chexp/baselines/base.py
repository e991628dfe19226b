"""What every baseline attribution method shares: the call shape and input checks.

A method is a class built on a :class:`~chexp.models.base.Classifier`; its
:meth:`Attribution.attribute` takes images ``(B, 1, H, W)`` in [-1024, 1024] and a target (a
name such as ``"Cardiomegaly"``, a column index, or a :class:`~chexp.targets.Target`) and returns
maps ``(B, 1, H, W)``, the same call shape as Latent Shift and IBA. Inputs and targets are
checked before any gradient is computed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..models.base import Classifier
from ..targets import Target, as_target


class TargetScore(nn.Module):
    """``model`` followed by a target: images ``(B, 1, H, W)`` -> the explained score ``(B,)``.

    It holds the classifier as a submodule, so module hooks (Captum's guided backprop, LRP)
    see every layer of the classifier.
    """

    def __init__(self, model: Classifier, target: Target) -> None:
        super().__init__()
        self.model = model
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.target(self.model(x), self.model)


class Attribution(ABC):
    """Base class of the baseline methods (Captum-like: one class per method).

    Args:
        model: the classifier to explain. Its :attr:`~Classifier.output` decides which score
            is explained (the papers explain torchxrayvision's calibrated probability).
    """

    #: short name used in tables and figure legends.
    name: str = "attribution"

    def __init__(self, model: Classifier) -> None:
        if not isinstance(model, Classifier):
            raise TypeError(
                f"{type(self).__name__} needs a chexp Classifier, got {type(model).__name__}; wrap "
                "your network in a chexp.models.base.Classifier subclass"
            )
        self.model = model

    def _prepare(self, inputs: torch.Tensor, target: str | int | Target) -> tuple[torch.Tensor, Target]:
        """Validate ``inputs`` and ``target`` (cheap checks, before any heavy work)."""
        tgt = as_target(target)
        tgt.index(self.model)  # raises UnknownTargetError listing valid names
        self.model.check_input(inputs)
        return inputs.detach(), tgt

    def attribute(self, inputs: torch.Tensor, target: str | int | Target) -> torch.Tensor:
        """Attribution maps for ``target``.

        Args:
            inputs: images ``(B, 1, H, W)``, float, in [-1024, 1024].
            target: output name, column index or target object.

        Returns:
            maps ``(B, 1, H, W)`` (float, detached; units and sign documented per method).
        """
        x, tgt = self._prepare(inputs, target)
        maps = self._attribute(x, tgt)
        return maps.detach()

    @abstractmethod
    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        """The method itself, on checked inputs."""

    def __call__(self, inputs: torch.Tensor, target: str | int | Target) -> torch.Tensor:
        return self.attribute(inputs, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"
