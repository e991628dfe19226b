"""Stop conditions of the stepped rules (the released code's ``break`` tests).

Each condition is checked at every grid point of a :class:`~.stepped.SteppedSide`; the walk
stops at the first grid point where any of its conditions (or the side's limit) holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from .sides import LOWER

__all__ = ["StopCondition", "StopsMoving", "ChangedBy", "FallsBelow", "ImageChangedBy"]


class StopCondition(ABC):
    """A stop test of a stepped search at one grid point.

    ``direction`` is -1 on the lower side (the prediction should fall as lambda decreases) and
    +1 on the upper side (it should rise as lambda increases).
    """

    @abstractmethod
    def stops(
        self, value: float, previous: float, value0: float, change: float, recon_abs_sum: float, direction: int
    ) -> bool:
        """True when the search stops at this grid point."""

    def threshold(self, value0: float, direction: int) -> float | None:
        """The prediction level at which this condition triggers (``None`` if not a level)."""
        return None


@dataclass(frozen=True)
class StopsMoving(StopCondition):
    """The prediction stops moving in the wanted direction (code: ``last_pred < cur_pred``)."""

    def stops(self, value, previous, value0, change, recon_abs_sum, direction) -> bool:
        return direction * (value - previous) < 0


@dataclass(frozen=True)
class ChangedBy(StopCondition):
    """The prediction moved by more than ``amount`` from its start (``initial - 0.5 > cur``).

    Args:
        amount: the change, in prediction units, or a fraction of ``|initial|`` if ``relative``.
        relative: the paper's "falls by 30 %" reading.
        inclusive: stop when the change is reached exactly too (``>=``), not only exceeded.
        edge: the edge of the value's range on this side (1.0 for a probability rising), or
            ``None``. A level beyond it (a probability of 0.96 cannot rise by 5 %) is replaced
            by halfway between the start and the edge: chexp's rule for saturated predictions
            (:class:`~.threshold.ThresholdSide` ``halfway_if_out_of_range``), walked stepwise.
    """

    amount: float
    relative: bool = False
    inclusive: bool = False
    edge: float | None = None

    def level(self, value0: float, direction: int) -> float:
        amount = self.amount * abs(value0) if self.relative else self.amount
        level = value0 + direction * amount
        if self.edge is not None and direction * (level - self.edge) > 0:
            return 0.5 * (value0 + self.edge)
        return level

    def stops(self, value, previous, value0, change, recon_abs_sum, direction) -> bool:
        beyond = direction * (value - self.level(value0, direction))
        return beyond >= 0 if self.inclusive else beyond > 0

    def threshold(self, value0, direction):
        return self.level(value0, direction)


@dataclass(frozen=True)
class FallsBelow(StopCondition):
    """The prediction falls under an absolute level (latentshift 0.0.6: ``cur_pred < 0.05``)."""

    level: float

    def stops(self, value, previous, value0, change, recon_abs_sum, direction) -> bool:
        return value < self.level

    def threshold(self, value0, direction):
        return self.level if direction == LOWER else None


@dataclass(frozen=True)
class ImageChangedBy(StopCondition):
    """``sum |frame - recon| > fraction * sum |recon|`` (latentshift 0.0.6, 5 %)."""

    fraction: float

    def stops(self, value, previous, value0, change, recon_abs_sum, direction) -> bool:
        return change > self.fraction * recon_abs_sum
