"""Model losses of the IBA family: what IBA optimises for a target.

The IBA family takes the target objects of every other method (:mod:`chexp.targets`: ``None``,
a name, an index, a per-image list, a :class:`~chexp.targets.RegressionTarget`) and turns each
into a loss with :func:`as_loss`; a loss object below can be given instead to choose the loss.
Every loss is built from a target (``TargetBCE("Effusion")``, ``RegressionMSE(2.0, target=...)``).

Classification (``model.output`` is ``"probability"`` or ``"logit"``):

* :class:`TargetBCE` (default): binary cross-entropy of the target output against 1, computed
  from the model's logits (``softplus(-logit)``; for torchxrayvision that is the raw output
  before its sigmoid and operating-point normalisation). A model without logits
  (``logits`` raising ``NotImplementedError``) is scored on its probability, ``-log p``; no second
  sigmoid is ever applied.
* :class:`OneHotBCE`: the released CheXplain-IBA loss, BCE-with-logits of every output against a
  one-hot vector of the target, averaged over the ``C`` outputs. Its target term weighs ``1 / C``
  of :class:`TargetBCE`'s, so the same ``beta`` restricts information about ``C`` times more
  strongly (``beta = 10`` with :class:`TargetBCE` is about ``beta = 10 / 14 = 0.7`` of the
  released code on the 14 NIH classes).
* :class:`SoftmaxCE`: the original IBA loss for mutually exclusive classes, ``-log softmax``.

Regression (``model.output == "score"``), the three losses of CheXplain-IBA section 2.2:

* :class:`RegressionMSE`: ``(Phi(Z) - y)^2`` for a target score ``y``.
* :class:`RegressionMaximize`: drive the score up, minimising ``-Phi(Z) |Phi(Z)|``: the released
  code's ``-Phi(Z)^2`` (the paper's ``L_RM = Phi(Z)^2``, maximised) where the score is >= 0, and
  still decreasing in the score where it is negative (``-Phi^2`` would push a negative score
  further down).
* :class:`RegressionDeviation` (default for a :class:`~chexp.targets.RegressionTarget` and for
  Regression IBA): ``(Phi(Z) - Phi(X))^2``, deviation from the unperturbed score.

Every loss returns one value per image ``(B,)``: the mean over the noise draws.

The IBA classes take the loss a target is explained with by name (:data:`LOSSES`, e.g.
``IBA(..., loss="onehot")``) or as a class / callable ``target -> loss``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidParameterError, LossMismatchError
from ..models.base import Classifier
from ..targets import RegressionTarget, Target, TargetLike, as_target


def _per_image(value: object, rows: slice) -> object:
    if isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.dim() == 0):
        return value
    return value[rows]  # type: ignore[index]


class ModelLoss(ABC):
    """What IBA explains: the model outputs it needs and the loss on them.

    Subclasses implement :meth:`check`, :meth:`scores` and :meth:`__call__`.
    """

    @abstractmethod
    def check(self, model: Classifier, batch: int) -> None:
        """Raise (before any heavy work) if this loss does not fit ``model`` or the batch size."""

    @abstractmethod
    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The model outputs this loss is computed on, ``(N, T)``."""

    @abstractmethod
    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        """Loss per image ``(B,)`` for perturbed scores ``(B, S, T)`` and clean scores ``(B, T)``."""

    def select(self, rows: slice) -> ModelLoss:
        """A copy of this loss for a slice of the batch (per-image targets are sliced)."""
        return copy.copy(self)

    @property
    def scored_on(self) -> str:
        """Which model output the loss used: ``"logit"``, ``"probability"`` or ``"score"``."""
        return "score"


# --- classification --------------------------------------------------------------------------


class _ClassificationLoss(ModelLoss):
    needs_logits = False

    def __init__(self, target: TargetLike) -> None:
        self.target = as_target(target)
        self._idx: torch.Tensor | None = None
        self._kind = "logit"
        self._model: Classifier | None = None

    def check(self, model: Classifier, batch: int) -> None:
        if not isinstance(model, Classifier):
            raise LossMismatchError(
                f"{type(self).__name__} needs a chexp Classifier, got {type(model).__name__}"
            )
        if model.output == "score":
            raise LossMismatchError(
                f"{type(self).__name__} is a classification loss but the model is a regression "
                "head (output 'score'); use RegressionMSE, RegressionMaximize or RegressionDeviation"
            )
        self._idx = self.target.columns(model, batch)
        self._model = model

    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self._kind == "logit":
            try:
                return model.logits(x)  # type: ignore[operator]
            except NotImplementedError:
                if self.needs_logits:
                    raise LossMismatchError(f"{type(self).__name__} needs a model with logits") from None
                self._kind = "probability"
        return model.probabilities(x)  # type: ignore[operator]

    @property
    def scored_on(self) -> str:
        return self._kind

    def _target_scores(self, scores: torch.Tensor) -> torch.Tensor:
        assert self._idx is not None, "call check(model, batch) first"
        b, s, _ = scores.shape
        idx = self._idx.to(scores.device).view(b, 1, 1).expand(b, s, 1)
        return scores.gather(2, idx).squeeze(2)

    def select(self, rows: slice) -> ModelLoss:
        part = copy.copy(self)
        part.target = self.target.select(rows)
        return part

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!s})"


class TargetBCE(_ClassificationLoss):
    """BCE of the target output against 1: ``softplus(-logit)`` (or ``-log p`` without logits).

    Args:
        target: a target object or shorthand (:func:`chexp.targets.as_target`): an output name
            or index, one per image, or ``None`` for the model's only output.
    """

    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        t = self._target_scores(scores)
        if self._kind == "logit":
            return F.softplus(-t).mean(dim=1)
        return -torch.log(t.clamp(1e-7, 1.0)).mean(dim=1)


class OneHotBCE(_ClassificationLoss):
    """BCE-with-logits of all (named) outputs against a one-hot vector of the target.

    The released CheXplain-IBA loss: it also pushes the other outputs towards 0.
    """

    needs_logits = True

    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        assert self._idx is not None and self._model is not None
        b, s, t = scores.shape
        valid = torch.tensor([bool(n) for n in self._model.targets], device=scores.device)
        onehot = F.one_hot(self._idx.to(scores.device), t).to(scores.dtype)[:, None, :].expand(b, s, t)
        per = F.binary_cross_entropy_with_logits(scores, onehot, reduction="none")
        return (per * valid).sum(dim=2).div(valid.sum()).mean(dim=1)


class SoftmaxCE(_ClassificationLoss):
    """``-log softmax(logits)[target]``: the original IBA loss for exclusive classes."""

    needs_logits = True

    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(scores, dim=2)
        return -self._target_scores(logp).mean(dim=1)


# --- regression --------------------------------------------------------------------------------


class _RegressionLoss(ModelLoss):
    def __init__(self, target: TargetLike = None) -> None:
        self.target = as_target(target)
        self._index = 0

    def check(self, model: Classifier, batch: int) -> None:
        if getattr(model, "output", None) != "score":
            raise LossMismatchError(
                f"{type(self).__name__} is a regression loss but the model's output is "
                f"{getattr(model, 'output', None)!r}, not 'score'; use TargetBCE (or a class name) "
                "for classifiers"
            )
        columns = self.target.columns(model, batch)
        if batch and bool((columns != columns[0]).any()):
            raise LossMismatchError(f"{type(self).__name__} explains one output for every image, got {self.target}")
        self._index = int(columns[0]) if batch else 0

    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model.logits(x)  # type: ignore[operator]

    def _phi(self, scores: torch.Tensor) -> torch.Tensor:
        return scores[..., self._index]

    def select(self, rows: slice) -> ModelLoss:
        part = copy.copy(self)
        part.target = self.target.select(rows)
        return part

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.target!s})"


class RegressionMSE(_RegressionLoss):
    """``(Phi(Z) - y)^2``: find what drives the score to ``value``.

    Args:
        value: target score, one for all images or a sequence/tensor with one per image.
        target: which output (a target object, name or index); ``None`` for a model with one
            output.
    """

    def __init__(self, value: float | Sequence[float] | torch.Tensor, target: TargetLike = None) -> None:
        super().__init__(target)
        self.value = value

    def check(self, model: Classifier, batch: int) -> None:
        super().check(model, batch)
        v = torch.as_tensor(self.value, dtype=torch.float32)
        if v.dim() > 0 and v.numel() != batch:
            raise InvalidParameterError(
                f"RegressionMSE value must be one number or one per image: got {v.numel()} target values "
                f"for {batch} images"
            )
        if not bool(torch.isfinite(v).all()):
            raise InvalidParameterError(f"RegressionMSE value must be finite, got {self.value!r}")

    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(self.value, dtype=scores.dtype, device=scores.device)
        y = y.view(-1, 1) if y.dim() > 0 else y
        return ((self._phi(scores) - y) ** 2).mean(dim=1)

    def select(self, rows: slice) -> ModelLoss:
        part = super().select(rows)
        part.value = _per_image(self.value, rows)  # type: ignore[attr-defined]
        return part


class RegressionMaximize(_RegressionLoss):
    """Drive the score up: minimise ``-Phi(Z) |Phi(Z)|`` (regression maximisation).

    Equal to the released code's ``-Phi(Z)^2`` for scores >= 0 (BrixIA scores 0-18), but
    decreasing in ``Phi`` for every sign, so the optimisation always raises the score (the
    released loss lowers a negative score further).
    """

    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        phi = self._phi(scores)
        return -(phi * phi.abs()).mean(dim=1)


class RegressionDeviation(_RegressionLoss):
    """``(Phi(Z) - Phi(X))^2``: keep what the unperturbed score needs (paper Fig. 3a)."""

    def __call__(self, scores: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        return ((self._phi(scores) - self._phi(clean)[:, None]) ** 2).mean(dim=1)


LossFactory = Callable[[Target], ModelLoss]

#: Losses that need nothing but a target, by name: what ``loss=`` of the IBA classes accepts
#: (``"target"``: :class:`TargetBCE`, chexp's default; ``"onehot"``: :class:`OneHotBCE`, the
#: released CheXplain-IBA loss; ``"softmax"``: :class:`SoftmaxCE`, the original IBA loss;
#: ``"deviation"`` / ``"maximize"``: the regression losses).
LOSSES: Mapping[str, LossFactory] = {
    "target": TargetBCE,
    "onehot": OneHotBCE,
    "softmax": SoftmaxCE,
    "deviation": RegressionDeviation,
    "maximize": RegressionMaximize,
}


def as_loss(target: TargetLike | ModelLoss, default: LossFactory = TargetBCE) -> ModelLoss:
    """The IBA loss for ``target``: a loss object passes through, a
    :class:`~chexp.targets.RegressionTarget` gives :class:`RegressionDeviation`, any other target
    (or shorthand, see :func:`chexp.targets.as_target`) ``default(target)``."""
    if isinstance(target, ModelLoss):
        return target
    tgt = as_target(target)
    return RegressionDeviation(tgt) if isinstance(tgt, RegressionTarget) else default(tgt)
