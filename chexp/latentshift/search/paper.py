"""The paper's rule (Gifsplanation, Cohen et al. MIDL 2021, section 4.2), the default.

The lower bound is the lambda where the prediction has fallen by 30 %, the upper bound the
lambda where it has risen by 5 %, both relative to the prediction at lambda = 0::

    lower:  g(lambda) = g(0) - 0.30 * |g(0)|,   lambda < 0
    upper:  g(lambda) = g(0) + 0.05 * |g(0)|,   lambda > 0

Each bound is one :class:`~.threshold.ThresholdSide` (Newton step, then secant) with a limit of
|lambda| = 1000 as in the released code. :meth:`PaperSearch.reference` is the same rule walked
the released code's way (lambda = 0, -10, -20, ... until the level is reached).
"""

from __future__ import annotations

from .rule import LambdaSearch
from .schedules import ConstantStep
from .sides import LOWER, UPPER
from .stepped import SteppedSearch, SteppedSide
from .stops import ChangedBy
from .threshold import ThresholdSide

__all__ = ["PaperSearch"]


class PaperSearch(LambdaSearch):
    """Paper section 4.2 (default): lower bound where the prediction fell by ``fall`` (30 %),
    upper bound where it rose by ``rise`` (5 %), relative to the lambda = 0 prediction.

    Args:
        fall, rise: fractions of ``|g(0)|`` (or prediction units if ``relative=False``).
        limit: largest ``|lambda|`` (1000 as in the released code).
        rtol: accepted error, as a fraction of the wanted change.
        probes: lambdas per side per round.
        step: step of the sequential reference walk (:meth:`reference`; 10 as in the code).
        halfway_if_out_of_range: see :class:`ThresholdSide` (for p0 > 0.952 the 5 % rise is
            impossible; the upper bound then aims at ``(p0 + 1) / 2``).
    """

    name = "paper"

    def __init__(
        self,
        fall: float = 0.3,
        rise: float = 0.05,
        relative: bool = True,
        limit: float = 1000.0,
        rtol: float = 0.1,
        probes: int = 1,
        max_rounds: int = 8,
        step: float = 10.0,
        halfway_if_out_of_range: bool = True,
    ) -> None:
        self.fall, self.rise, self.relative, self.limit, self.step = fall, rise, relative, limit, step
        args = (relative, limit, rtol, max_rounds, probes, halfway_if_out_of_range)
        self.lower = ThresholdSide(LOWER, fall, *args)
        self.upper = ThresholdSide(UPPER, rise, *args) if rise > 0 else None

    def reference(self, value_range: tuple[float, float] | None = None) -> SteppedSearch:
        """The same levels walked the released way: constant ``step`` from 0, stop at the level.
        Given the output's ``value_range``, a level outside it is replaced by halfway to its edge,
        as the batched search does (``halfway_if_out_of_range``)."""
        low_edge, high_edge = value_range if value_range and self.lower.halfway_if_out_of_range else (None, None)
        fall = ChangedBy(self.fall, self.relative, True, edge=low_edge)
        sides = [SteppedSide(LOWER, ConstantStep(self.step), (fall,), self.limit)]
        if self.upper is not None:
            rise = ChangedBy(self.rise, self.relative, True, edge=high_edge)
            sides.append(SteppedSide(UPPER, ConstantStep(self.step), (rise,), self.limit))
        return SteppedSearch(*sides, name="paper-sequential")
