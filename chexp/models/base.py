"""The two model interfaces every method of chexp works with.

* :class:`Classifier`: images ``(B, 1, H, W)`` in [-1024, 1024] -> scores ``(B, T)``, one column per
  name in :attr:`Classifier.targets`. What a score is is explicit in :attr:`Classifier.output`:
  ``"probability"`` (calibrated probabilities exactly as the underlying model returns them; for
  torchxrayvision that is sigmoid followed by its per-class operating-point normalisation),
  ``"logit"`` (raw pre-sigmoid outputs) or ``"score"`` (a regression head, no squashing). No second
  sigmoid is ever applied on top of a probability.
* :class:`Autoencoder`: :meth:`~Autoencoder.encode` images to a latent tensor and
  :meth:`~Autoencoder.decode` it back to images in the same range.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from ..errors import InputShapeError, InvalidParameterError, UnknownTargetError
from ..validation import check_images

OutputKind = Literal["probability", "logit", "score"]
OUTPUT_KINDS: tuple[str, ...] = ("probability", "logit", "score")


def _check_output_kind(output: object) -> None:
    if output not in OUTPUT_KINDS:
        raise InvalidParameterError(f"output must be one of {', '.join(OUTPUT_KINDS)}, got {output!r}")


class Classifier(nn.Module, ABC):
    """A chest X-ray model with named outputs.

    Subclasses implement :meth:`logits` (and :meth:`probabilities` when the model has its own
    calibration); :meth:`forward` returns whichever kind :attr:`output` names.

    Attributes:
        targets: output names, in column order. Empty strings mark columns the model does not
            predict (torchxrayvision keeps 18 columns for every model).
        output: ``"probability"``, ``"logit"`` or ``"score"``.
        input_size: the square side the model requires, or ``None`` if any size works.
    """

    def __init__(
        self,
        targets: Sequence[str],
        output: OutputKind = "probability",
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        _check_output_kind(output)
        self.targets: tuple[str, ...] = tuple(targets)
        self.output: OutputKind = output
        self.input_size = input_size

    # -- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``(B, T)`` before any sigmoid (regression scores for a regression head)."""

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(B, T)``; by default ``sigmoid(logits)``."""
        return torch.sigmoid(self.logits(x))

    # -- the common behaviour -----------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, T)`` of the kind named by :attr:`output` for images ``(B, 1, H, W)``."""
        if self.output == "probability":
            return self.probabilities(x)
        return self.logits(x)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate shape, size and range (see :func:`chexp.validation.check_images`)."""
        return check_images(x, size=self.input_size)

    def target_index(self, target: str | int) -> int:
        """Column index of a target given by name (or by index, which is range-checked)."""
        valid = [t for t in self.targets if t]
        if isinstance(target, bool) or not isinstance(target, (str, int)):
            raise UnknownTargetError(target, valid)
        if isinstance(target, int):
            if 0 <= target < len(self.targets) and self.targets[target]:
                return target
            raise UnknownTargetError(target, valid)
        try:
            index = self.targets.index(target)
        except ValueError:
            raise UnknownTargetError(target, valid) from None
        if not target:
            raise UnknownTargetError(target, valid)
        return index

    def with_output(self, output: OutputKind) -> Classifier:
        """A shallow copy that shares every parameter but returns scores of another kind."""
        _check_output_kind(output)
        clone = copy.copy(self)
        clone.output = output
        return clone

    def extra_repr(self) -> str:
        names = [t for t in self.targets if t]
        return f"output={self.output!r}, targets={names}, input_size={self.input_size}"


class Autoencoder(nn.Module, ABC):
    """An image autoencoder for Latent Shift: ``decode(encode(x)) ~= x``.

    Attributes:
        input_size: the square side the model requires, or ``None`` if any size works (a
            multiple of :attr:`size_multiple`).
        size_multiple: image sides must be a multiple of this (e.g. 2 ** number of downsamplings).
    """

    def __init__(self, input_size: int | None = None, size_multiple: int = 1) -> None:
        super().__init__()
        self.input_size = input_size
        self.size_multiple = size_multiple

    @abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent tensor for images ``(B, 1, H, W)`` in [-1024, 1024]."""

    @abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, H, W)`` (approximately in [-1024, 1024]) for a latent tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate shape, range and a size this autoencoder accepts."""
        check_images(x, size=self.input_size)
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise InputShapeError(
                f"this autoencoder needs image sides that are multiples of {self.size_multiple}, "
                f"got {h}x{w}"
            )
        return x
