"""Target objects: what an explanation explains.

In the style of pytorch-grad-cam, every attribution method takes a target object that maps a
model's scores to the one score per image being explained. Wherever a target is accepted, so
are the shorthands that :func:`as_target` converts:

==============================  =============================  ==========================================
shorthand                       target object                  explains, for each image
==============================  =============================  ==========================================
``None``                        :class:`OnlyOutput`            the model's only (named) output; a model
                                                               with several raises
                                                               :class:`~chexp.errors.TargetRequiredError`
``"Cardiomegaly"`` or ``10``    :class:`ClassTarget`           that output (name or column index)
``["Effusion", "Mass", ...]``   :class:`PerImageTarget`        its own output, one entry per image
(none)                          :class:`RegressionTarget`      the score of a regression head's output
==============================  =============================  ==========================================

Every method gives ``target=None`` this one meaning. Names and indices are checked against the
model before any heavy work (:class:`~chexp.errors.UnknownTargetError` lists the valid names).

A target answers :meth:`Target.columns` (the output column explained for each image) and is
called on scores: ``target(scores (N, T), model, rows=None) -> (N,)``; ``rows`` gives the image
of each score row when a method evaluates several rows per image (e.g. integrated gradients'
interpolation steps). The IBA family turns targets into losses (:func:`chexp.iba.losses.as_loss`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import InvalidParameterError, InvalidTypeError, TargetRequiredError
from .models.base import Classifier

__all__ = [
    "ClassTarget",
    "OnlyOutput",
    "OutputTarget",
    "PerImageTarget",
    "RegressionTarget",
    "Target",
    "TargetLike",
    "as_target",
]


class Target(ABC):
    """Maps a model's scores ``(N, T)`` to the scalar per image ``(N,)`` being explained."""

    @abstractmethod
    def columns(self, model: Classifier, batch: int) -> torch.Tensor:
        """The output column explained for each of ``batch`` images, ``(batch,)`` int64 on the CPU.

        Raises :class:`~chexp.errors.UnknownTargetError` for an output the model does not have.
        """

    @abstractmethod
    def __call__(self, scores: torch.Tensor, model: Classifier, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The explained score of each row of ``scores`` ``(N, T)``, ``(N,)``.

        ``rows`` ``(N,)``: the image (index in the explained batch) of each row; ``None`` when
        row ``i`` is image ``i``.
        """

    def select(self, rows: slice) -> Target:
        """The target of a slice of the batch (per-image targets are sliced, others unchanged)."""
        return self

    @abstractmethod
    def label(self, model: Classifier) -> str:
        """Human-readable name of what is explained (for titles and tables)."""


class OutputTarget(Target):
    """A target that explains the same output column for every image."""

    @abstractmethod
    def index(self, model: Classifier) -> int:
        """The output column explained."""

    def columns(self, model: Classifier, batch: int) -> torch.Tensor:
        return torch.full((batch,), self.index(model), dtype=torch.long)

    def __call__(self, scores: torch.Tensor, model: Classifier, rows: torch.Tensor | None = None) -> torch.Tensor:
        return scores[:, self.index(model)]

    def label(self, model: Classifier) -> str:
        return model.targets[self.index(model)]


def _only_output(model: Classifier) -> int:
    named = [i for i, name in enumerate(model.targets) if name]
    if len(named) != 1:
        raise TargetRequiredError(model.targets)
    return named[0]


@dataclass(frozen=True)
class ClassTarget(OutputTarget):
    """The score of one output, named as in ``model.targets`` (e.g. ``"Cardiomegaly"``) or given
    by its column index."""

    name: str | int

    def index(self, model: Classifier) -> int:
        return model.target_index(self.name)

    def __str__(self) -> str:
        return str(self.name)


@dataclass(frozen=True)
class OnlyOutput(OutputTarget):
    """``target=None``: the model's only named output (for a one-output classifier or regression
    head); a model with several outputs raises :class:`~chexp.errors.TargetRequiredError`."""

    def index(self, model: Classifier) -> int:
        return _only_output(model)

    def __str__(self) -> str:
        return "only output"


@dataclass(frozen=True)
class RegressionTarget(OutputTarget):
    """The score of an output of a regression head (``model.output == "score"``).

    Gradient methods and Latent Shift explain that score as :class:`ClassTarget` would; the IBA
    family explains it with the regression loss :class:`~chexp.iba.losses.RegressionDeviation`
    (keep what the unperturbed score needs) instead of a classification loss.

    Args:
        output: output name or column index; ``None``: the model's only output.
    """

    output: str | int | None = None

    def index(self, model: Classifier) -> int:
        return _only_output(model) if self.output is None else model.target_index(self.output)

    def __str__(self) -> str:
        return "only output" if self.output is None else str(self.output)


@dataclass(frozen=True, init=False)
class PerImageTarget(Target):
    """One output per image (names or column indices), in batch order."""

    targets: tuple[str | int, ...]

    def __init__(self, targets: Sequence[str | int]) -> None:
        object.__setattr__(self, "targets", tuple(targets))

    def _all_columns(self, model: Classifier) -> torch.Tensor:
        return torch.tensor([model.target_index(t) for t in self.targets], dtype=torch.long)

    def columns(self, model: Classifier, batch: int) -> torch.Tensor:
        if len(self.targets) != batch:
            raise InvalidParameterError(
                f"a list of targets needs one target per image: got {len(self.targets)} targets for "
                f"{batch} images"
            )
        return self._all_columns(model)

    def __call__(self, scores: torch.Tensor, model: Classifier, rows: torch.Tensor | None = None) -> torch.Tensor:
        cols = self.columns(model, scores.shape[0]) if rows is None else self._all_columns(model)[rows.cpu()]
        return scores.gather(1, cols.to(scores.device)[:, None])[:, 0]

    def select(self, rows: slice) -> Target:
        return PerImageTarget(self.targets[rows])

    def label(self, model: Classifier) -> str:
        return ", ".join(dict.fromkeys(model.targets[i] for i in self._all_columns(model).tolist()))

    def __str__(self) -> str:
        return ", ".join(map(str, self.targets))


#: What every ``target=`` argument accepts.
TargetLike = Target | str | int | Sequence[str | int] | None


def as_target(target: TargetLike) -> Target:
    """The target object for ``target``: ``None`` -> :class:`OnlyOutput`, a name or column
    index -> :class:`ClassTarget`, a list or tuple of them -> :class:`PerImageTarget`; target
    objects pass through. Anything else raises ``TypeError``."""
    if isinstance(target, Target):
        return target
    if target is None:
        return OnlyOutput()
    if isinstance(target, (str, int)) and not isinstance(target, bool):
        return ClassTarget(target)
    if isinstance(target, (list, tuple)) and all(
        isinstance(t, (str, int)) and not isinstance(t, bool) for t in target
    ):
        return PerImageTarget(target)
    raise InvalidTypeError(
        f"a target must be None, a name, an index, a list of those (one per image) or a target "
        f"object, got {target!r}"
    )
