"""The paper's rule (Gifsplanation, Cohen et al. MIDL 2021, section 4.2), the default.

The paper says the lambdas "are chosen such that the prediction decreases by 30% and increases
by 5%" without saying relative to what. :class:`PaperSearch` (``paper``, the default) reads it
relative to the prediction at lambda = 0, an interpretation::

    lower:  g(lambda) = g(0) - 0.30 * |g(0)|,   lambda < 0
    upper:  g(lambda) = g(0) + 0.05 * |g(0)|,   lambda > 0

:class:`PaperAbsoluteSearch` (``paper-absolute``) reads it in probability units,
``g(0) - 0.30`` and ``g(0) + 0.05``: the only upper rule the released code has is the absolute
``initial_pred + 0.05`` (gifsplanation ea2d16c to 5e78981, with stop-at-a-fall steps; see
:class:`~.released.Gifsplanation2021Search`).

Each bound is one :class:`~.threshold.ThresholdSide` (Newton step, then secant) with a limit of
|lambda| = 1000 as in the released code. :meth:`PaperSearch.reference` is the same rule walked
the released code's way (lambda = 0, -10, -20, ... until the level is reached).

Where the curve turns before reaching a level, a side falls back to the evaluated lambda with the
lowest (lower side) or highest (upper side) prediction and reports ``converged=False``
(:mod:`.threshold`).
"""

from __future__ import annotations

from .rule import LambdaSearch
from .schedules import ConstantStep
from .sides import LOWER, UPPER
from .stepped import SteppedSearch, SteppedSide
from .stops import ChangedBy
from .threshold import ThresholdSide

__all__ = ["PaperSearch", "PaperAbsoluteSearch"]


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


class PaperAbsoluteSearch(PaperSearch):
    """Paper section 4.2 read in probability units: lower bound where the prediction fell by
    ``fall`` (0.30), upper bound where it rose by ``rise`` (0.05, the released code's upper rule),
    both absolute. Same solver and options as :class:`PaperSearch`."""

    name = "paper-absolute"

    def __init__(self, fall: float = 0.3, rise: float = 0.05, **options: float | int | bool) -> None:
        super().__init__(fall, rise, relative=False, **options)  # type: ignore[arg-type]
