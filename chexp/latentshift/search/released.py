"""The stepped rules of the paper's appendix and of the released code.

Each rule is the released walk (lambda steps from 0 and stops at the first step where one of
its conditions holds), searched in batches by :class:`~.stepped.SteppedSide`:

* :class:`AppendixCSearch`: paper Appendix C.
* :class:`Gifsplanation2021Search`: github.com/mlmed/gifsplanation ``attribution.py`` from
  ea2d16c (2021-01-22) to 5e78981 (2021-03-16), the code of the paper's tables.
* :class:`GifsplanationCurrentSearch`: the same file from 2636048 (2021-06-14), unchanged in its
  last version 13971c1 (2022-07-17).
* :class:`LatentShiftPackageSearch`: ``latentshift`` 0.0.6 on PyPI
  (``latentshift/cf/latent_shift.py`` of github.com/ieee8023/latentshift).
"""

from __future__ import annotations

from .schedules import AcceleratingStep, ConstantStep, FineThenCoarse
from .sides import LOWER, UPPER
from .stepped import SteppedSearch, SteppedSide
from .stops import ChangedBy, FallsBelow, ImageChangedBy, StopsMoving

__all__ = ["AppendixCSearch", "Gifsplanation2021Search", "GifsplanationCurrentSearch", "LatentShiftPackageSearch"]


class AppendixCSearch(SteppedSearch):
    """Paper Appendix C: lambda = 0, -10, -20, ... until the prediction stops falling, falls more
    than ``max_fall`` below its start, or lambda <= -``limit``. Upper bound 0."""

    def __init__(self, step: float = 10.0, max_fall: float = 0.5, limit: float = 1000.0,
                 exhaustive: bool = False, chunk: int = 8) -> None:
        lower = SteppedSide(LOWER, ConstantStep(step), (StopsMoving(), ChangedBy(max_fall)), limit, exhaustive, chunk)
        super().__init__(lower, name="appendix-c")


class Gifsplanation2021Search(SteppedSearch):
    """The early-2021 gifsplanation code (the paper's tables): no extra sigmoid; steps of 1
    while ``|lambda| < 10``, then 10; lower side stops when the prediction rises, falls below
    start - 0.5, or at -1000; upper side stops when it falls, rises above start + 0.05, or at +1000."""

    def __init__(self, max_fall: float = 0.5, max_rise: float = 0.05, limit: float = 1000.0,
                 exhaustive: bool = False, chunk: int = 8) -> None:
        schedule = FineThenCoarse(1.0, 10.0)
        lower = SteppedSide(LOWER, schedule, (StopsMoving(), ChangedBy(max_fall)), limit, exhaustive, chunk)
        upper = SteppedSide(UPPER, schedule, (StopsMoving(), ChangedBy(max_rise)), limit, exhaustive, chunk)
        super().__init__(lower, upper, name="gifsplanation-2021")


class GifsplanationCurrentSearch(SteppedSearch):
    """The current gifsplanation code: an extra sigmoid on the model's output (on top of a
    probability it squashes predictions into [0.5, 0.73]); lower side only; steps of 1 then 10;
    stops when the prediction rises, falls below start - 0.15, or at -1000."""

    def __init__(self, max_fall: float = 0.15, limit: float = 1000.0, extra_sigmoid: bool = True,
                 exhaustive: bool = False, chunk: int = 8) -> None:
        stops = (StopsMoving(), ChangedBy(max_fall))
        lower = SteppedSide(LOWER, FineThenCoarse(1.0, 10.0), stops, limit, exhaustive, chunk)
        super().__init__(lower, extra_sigmoid=extra_sigmoid, name="gifsplanation-current")


class LatentShiftPackageSearch(SteppedSearch):
    """``latentshift`` 0.0.6 on PyPI: lambda <- lambda - 10 + lambda // 10 (0, -10, -21, -34, ...),
    extra sigmoid by default (``apply_sigmoid=True``); stops when the prediction rises, falls under
    ``floor`` (0.05), falls more than ``pred_diff`` (0.8, absolute) below its start, lambda <=
    -``limit`` (3000), or ``sum|frame - recon| > max_pixel_diff * sum|recon|`` (5 %). Upper bound 0."""

    def __init__(self, pred_diff: float = 0.8, floor: float = 0.05, max_pixel_diff: float = 0.05,
                 limit: float = 3000.0, step: float = 10.0, extra_sigmoid: bool = True,
                 exhaustive: bool = False, chunk: int = 8) -> None:
        stops = (StopsMoving(), FallsBelow(floor), ChangedBy(pred_diff), ImageChangedBy(max_pixel_diff))
        lower = SteppedSide(LOWER, AcceleratingStep(step, 10.0), stops, limit, exhaustive, chunk)
        super().__init__(lower, extra_sigmoid=extra_sigmoid, name="latentshift-0.0.6")
