"""Target objects: what an explanation explains.

In the style of pytorch-grad-cam, methods take a target object rather than an integer and
flags. :class:`ClassTarget` picks one named output of a :class:`~chexp.models.Classifier`;
a plain string or int is accepted wherever a target is and converted with :func:`as_target`.
Methods with their own notion of target (for example the regression losses of Regression IBA)
define further target classes with the same ``__call__(scores, model)`` shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from .models.base import Classifier


@runtime_checkable
class Target(Protocol):
    """Maps a model's scores ``(B, T)`` to the scalar per image ``(B,)`` being explained."""

    def index(self, model: Classifier) -> int: ...

    def __call__(self, scores: torch.Tensor, model: Classifier) -> torch.Tensor: ...


@dataclass(frozen=True)
class ClassTarget:
    """The score of one output, named as in ``model.targets`` (e.g. ``"Cardiomegaly"``).

    An unknown name raises :class:`~chexp.errors.UnknownTargetError` listing the valid ones.
    """

    name: str | int

    def index(self, model: Classifier) -> int:
        return model.target_index(self.name)

    def __call__(self, scores: torch.Tensor, model: Classifier) -> torch.Tensor:
        return scores[:, self.index(model)]

    def __str__(self) -> str:
        return str(self.name)


def as_target(target: str | int | Target) -> Target:
    """Convert a name or column index to a :class:`ClassTarget`; pass target objects through."""
    if isinstance(target, (str, int)) and not isinstance(target, bool):
        return ClassTarget(target)
    if isinstance(target, Target):
        return target
    raise TypeError(f"a target must be a name, an index or a target object, got {target!r}")
