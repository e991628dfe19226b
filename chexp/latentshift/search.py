"""Lambda search rules of Latent Shift, as objects.

A rule decides the lambda range ``[lower, upper]`` whose frames ``D(z + lambda * dz)`` make up
an explanation. Every rule is a :class:`LambdaSearch` with a lower side (lambda < 0, removing
the feature) and optionally an upper side (lambda > 0, exaggerating it):

=====================================  ==================================================================
:class:`PaperSearch` (default)         paper section 4.2: the prediction falls by 30 % (lower bound) and
                                       rises by 5 % (upper bound), relative to the lambda = 0 prediction.
:class:`AppendixCSearch`               paper Appendix C: step -10 from 0 until the prediction stops
                                       falling, falls more than 0.5 below the start, or lambda <= -1000.
:class:`Gifsplanation2021Search`       the February 2021 gifsplanation code (paper tables): steps of 1
                                       up to |lambda| = 10 then 10; lower stops at a rise, at start - 0.5
                                       or -1000; upper stops at a fall, at start + 0.05 or +1000.
:class:`GifsplanationCurrentSearch`    the current gifsplanation code: extra sigmoid on the model output,
                                       lower side only, stops at start - 0.15.
:class:`LatentShiftPackageSearch`      ``latentshift`` 0.0.6 (PyPI): steps 0, -10, -21, -34, ...
                                       (lambda - 10 + lambda // 10), extra sigmoid, stops at a rise, below
                                       0.05, at start - 0.8, at lambda <= -3000, or when the image changed
                                       by more than 5 % of its total absolute intensity.
:class:`FixedRange`                    a given ``[lower, upper]``, no search.
=====================================  ==================================================================

None of the rules runs one sequential decode per step. Every round evaluates the next lambdas
of all images and both sides in one batched forward pass (:class:`ShiftEvaluator`), and the
next lambdas are chosen by root finding on the one-dimensional prediction curve ``g(lambda)``:

* :class:`ThresholdSide` (continuous threshold, paper 4.2): a Newton step from lambda = 0 using
  the known slope ``g'(0) = |dz|^2`` (chain rule), then secant extrapolation until the target is
  bracketed, then safeguarded secant / bisection, until ``|g(lambda) - target| <= rtol * |target -
  g(0)|``. On a linear curve this takes one evaluation per side; the bound is always an
  evaluated lambda, so its frame is reused as the first/last output frame.
* :class:`SteppedSide` (the stepped rules of the released code): the same lambda grid and stop
  conditions as the code, but the first grid index where a stop condition holds is found by a
  Newton-guided search over grid indices (exact when the stop predicate is monotone along the
  grid, i.e. the prediction curve falls then possibly rises). ``exhaustive=True`` scans the grid
  in batched chunks instead and returns exactly the sequential result for any curve.

Each rule's :meth:`LambdaSearch.reference` is the released-code-style sequential walk (used by
:mod:`chexp.latentshift.reference` and the benchmark).
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import UnknownNameError
from ..progress import tqdm
from .evaluator import ShiftEvaluator

__all__ = [
    "StopCondition",
    "StopsMoving",
    "ChangedBy",
    "FallsBelow",
    "ImageChangedBy",
    "Schedule",
    "ConstantStep",
    "FineThenCoarse",
    "AcceleratingStep",
    "Side",
    "ThresholdSide",
    "SteppedSide",
    "SearchResult",
    "LambdaSearch",
    "PaperSearch",
    "SteppedSearch",
    "AppendixCSearch",
    "Gifsplanation2021Search",
    "GifsplanationCurrentSearch",
    "LatentShiftPackageSearch",
    "FixedRange",
    "SEARCH_RULES",
    "get_search",
]

LOWER, UPPER = -1, 1


# --------------------------------------------------------------------------------------------
# Stop conditions of the stepped rules
# --------------------------------------------------------------------------------------------
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
    """

    amount: float
    relative: bool = False
    inclusive: bool = False

    def level(self, value0: float, direction: int) -> float:
        amount = self.amount * abs(value0) if self.relative else self.amount
        return value0 + direction * amount

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


# --------------------------------------------------------------------------------------------
# Step schedules
# --------------------------------------------------------------------------------------------
class Schedule(ABC):
    """How a stepped search moves lambda; :meth:`grid` lists every lambda it can visit."""

    @abstractmethod
    def next(self, lam: float, direction: int) -> float: ...

    def grid(self, direction: int, limit: float) -> list[float]:
        """``[0, next(0), ...]`` up to and including the first point with ``|lambda| >= limit``."""
        out = [0.0]
        lam = 0.0
        while direction * lam < limit:
            new = float(self.next(lam, direction))
            if direction * new <= direction * lam:
                raise ValueError(f"{self!r} does not move lambda away from 0 at {lam}")
            lam = new
            out.append(lam)
        return out

    def typical_step(self) -> float:
        return 10.0


@dataclass(frozen=True)
class ConstantStep(Schedule):
    """``lambda + direction * step`` (paper Appendix C: 10)."""

    step: float = 10.0

    def next(self, lam, direction):
        return lam + direction * self.step

    def typical_step(self) -> float:
        return self.step


@dataclass(frozen=True)
class FineThenCoarse(Schedule):
    """Steps of ``fine`` while ``|lambda| < coarse``, then steps of ``coarse`` (gifsplanation code)."""

    fine: float = 1.0
    coarse: float = 10.0

    def next(self, lam, direction):
        return lam + direction * (self.fine if abs(lam) < self.coarse else self.coarse)

    def typical_step(self) -> float:
        return self.coarse


@dataclass(frozen=True)
class AcceleratingStep(Schedule):
    """``lambda - step + lambda // divisor`` (latentshift 0.0.6): 0, -10, -21, -34, ...

    Mirrored for the upper side (``lambda + step + (lambda // divisor)`` of ``-lambda``).
    """

    step: float = 10.0
    divisor: float = 10.0

    def next(self, lam, direction):
        if direction == LOWER:
            return lam - self.step + (lam // self.divisor)
        return -self.next(-lam, LOWER)


# --------------------------------------------------------------------------------------------
# Sides and their walkers (one walker per image and side)
# --------------------------------------------------------------------------------------------
class _Walker(ABC):
    """Search state of one image on one side; proposes lambdas, reads results from the cache."""

    def __init__(self, ev: ShiftEvaluator, image: int, direction: int) -> None:
        self.ev = ev
        self.image = image
        self.direction = direction
        self.done = False
        self.bound = 0.0
        self.reached_limit = False
        self.converged = True
        self.rounds = 0

    @abstractmethod
    def propose(self) -> list[float]: ...

    @abstractmethod
    def update(self) -> None: ...


class Side(ABC):
    """One side of a search (``direction`` -1: lower bound, +1: upper bound)."""

    direction: int

    @abstractmethod
    def walker(self, ev: ShiftEvaluator, image: int, value_range: tuple[float, float] | None) -> _Walker: ...


@dataclass(frozen=True)
class ThresholdSide(Side):
    """Find lambda where the prediction has moved by ``change`` (a fraction of ``|g(0)|`` if relative).

    Args:
        direction: -1 (lower bound, the prediction falls) or +1 (upper bound, it rises).
        change: 0.3 for "falls by 30 %", 0.05 for "rises by 5 %".
        relative: fraction of ``|g(0)|`` (paper) or prediction units.
        limit: largest ``|lambda|``; if the target is not reached before, the bound is the limit.
        rtol: accept ``|g(lambda) - target| <= rtol * |target - g(0)|``.
        max_rounds: at most this many refinement rounds.
        probes: lambdas evaluated per round (1 is cheapest on a CPU; more cut rounds on a GPU).
        halfway_if_out_of_range: when the target lies outside the output range (a probability of
            0.96 cannot rise by 5 %), aim halfway between the start and the range's edge instead
            of walking to ``limit`` (where the decoded frames leave the data far behind).
    """

    direction: int
    change: float
    relative: bool = True
    limit: float = 1000.0
    rtol: float = 0.1
    max_rounds: int = 8
    probes: int = 1
    halfway_if_out_of_range: bool = True

    def __post_init__(self) -> None:
        if self.direction not in (LOWER, UPPER):
            raise ValueError(f"direction must be -1 or +1, got {self.direction}")
        if self.change < 0 or self.limit <= 0 or self.rtol <= 0 or self.probes < 1 or self.max_rounds < 1:
            raise ValueError(f"invalid {self!r}: change >= 0, limit > 0, rtol > 0, probes >= 1 needed")

    def target(self, value0: float) -> float:
        amount = self.change * abs(value0) if self.relative else self.change
        return value0 + self.direction * amount

    def walker(self, ev, image, value_range):
        return _ThresholdWalker(ev, image, self, value_range)


class _ThresholdWalker(_Walker):
    def __init__(self, ev: ShiftEvaluator, image: int, side: ThresholdSide, value_range) -> None:
        super().__init__(ev, image, side.direction)
        self.side = side
        self.value0 = ev.value0[image]
        self.y = side.target(self.value0)
        self.limit = side.limit
        self.unreachable = value_range is not None and not (value_range[0] <= self.y <= value_range[1])
        if self.unreachable and side.halfway_if_out_of_range:
            edge = value_range[1] if self.direction == UPPER else value_range[0]
            self.y, self.unreachable = 0.5 * (self.value0 + edge), False
        self.tol = side.rtol * abs(self.y - self.value0)
        # Newton and secant steps work on logit(p) when the value is a probability: near p = 0 or
        # 1 the probability curve is flat, and a step from its slope overshoots far off the data.
        self.logit = value_range == (0.0, 1.0)
        self.last_width: float | None = None
        self.inside: list[tuple[float, float]] = [(0.0, self.value0)]
        self.crossed: tuple[float, float] | None = None
        self.update()

    def _u(self, value: float) -> float:
        """The scale the steps are taken on: ``logit(value)`` for probabilities, else ``value``."""
        if not self.logit:
            return value
        v = min(max(value, 1e-7), 1 - 1e-7)
        return math.log(v / (1 - v))

    def _du(self, value: float) -> float:
        """``d u / d value`` at ``value``."""
        if not self.logit:
            return 1.0
        v = min(max(value, 1e-7), 1 - 1e-7)
        return 1.0 / (v * (1 - v))

    def _crossed(self, value: float) -> bool:
        return self.direction * (value - self.y) >= 0

    def update(self) -> None:
        d = self.direction
        pts = sorted(
            ((l, e.value) for l, e in self.ev.cache[self.image].items() if d * l >= 0), key=lambda t: abs(t[0])
        )
        first = next((k for k, (_, v) in enumerate(pts) if self._crossed(v)), None)
        window = pts if first is None else pts[: first + 1]
        good = [p for p in window if abs(p[1] - self.y) <= self.tol]
        self.inside = pts if first is None else pts[:first]
        self.crossed = None if first is None else pts[first]
        if good:
            self._finish(min(good, key=lambda p: abs(p[1] - self.y))[0], converged=True)
        elif first is None and abs(pts[-1][0]) >= self.limit * (1 - 1e-12):
            self._finish(pts[-1][0], converged=False, limit=True)
        elif self.rounds >= self.side.max_rounds:
            self._finish(self.crossed[0] if self.crossed else pts[-1][0], converged=False)

    def _finish(self, bound: float, converged: bool, limit: bool = False) -> None:
        self.done, self.bound, self.converged, self.reached_limit = True, float(bound), converged, limit

    def _clamp(self, lam: float) -> float:
        return self.direction * min(abs(lam), self.limit)

    def propose(self) -> list[float]:
        if self.done:
            return []
        self.rounds += 1
        d, k = self.direction, self.side.probes
        u = self._u
        a_l, a_v = self.inside[-1]
        if self.crossed is not None:
            b_l, b_v = self.crossed
            width = b_l - a_l
            secant = a_l + (u(self.y) - u(a_v)) * width / (u(b_v) - u(a_v))
            slow = self.last_width is not None and abs(width) > 0.5 * self.last_width
            first = a_l + 0.5 * width if slow else min(max(secant, min(a_l, b_l) + 0.02 * abs(width)),
                                                       max(a_l, b_l) - 0.02 * abs(width))
            self.last_width = abs(width)
            lams = [first] + [a_l + width * j / k for j in range(1, k)]
        else:
            if self.unreachable:
                return [d * self.limit]
            if a_l == 0.0:
                slope = self.ev.slope[self.image] * self._du(a_v)
            else:
                p_l, p_v = self.inside[-2]
                slope = (u(a_v) - u(p_v)) / (a_l - p_l)
            if slope > 0 and math.isfinite(slope):
                step = (u(self.y) - u(a_v)) / slope
                if a_l != 0.0:
                    # extrapolation: move at least 10 % further out, at most 10x as far
                    step = d * min(max(abs(step), 0.1 * abs(a_l)), 10 * abs(a_l))
                newton = a_l + step
            else:
                newton = 2 * a_l if a_l != 0.0 else d * self.limit
            lams = [newton * (1 + 0.5 * j) for j in range(k)]
        out = []
        for lam in lams:
            lam = self._clamp(lam)
            if lam != 0.0 and not self.ev.known(self.image, lam) and lam not in out:
                out.append(lam)
        if not out:  # nothing new to learn: stop at the best point
            self._finish(self.crossed[0] if self.crossed else a_l, converged=False)
        return out


@dataclass(frozen=True)
class SteppedSide(Side):
    """A stepped walk as in the released code: a lambda grid and stop conditions.

    Args:
        direction: -1 (lower) or +1 (upper).
        schedule: how lambda steps (grid from 0 up to the first point at ``|lambda| >= limit``).
        stops: stop conditions checked at each grid point (the limit is always one).
        limit: largest ``|lambda|``.
        exhaustive: scan the grid in batched chunks (exactly the sequential result for any
            prediction curve) instead of the Newton-guided index search (exact when the stop
            predicate is monotone along the grid).
        chunk: grid points per image per round when ``exhaustive``.
    """

    direction: int
    schedule: Schedule
    stops: tuple[StopCondition, ...]
    limit: float = 1000.0
    exhaustive: bool = False
    chunk: int = 16

    def grid(self) -> list[float]:
        return _grid_cache(self.schedule, self.direction, self.limit)

    def stop_at(self, value, previous, value0, change, recon_abs_sum, lam) -> bool:
        if self.direction * lam >= self.limit:
            return True
        return any(s.stops(value, previous, value0, change, recon_abs_sum, self.direction) for s in self.stops)

    def threshold(self, value0: float) -> float | None:
        levels = [t for s in self.stops if (t := s.threshold(value0, self.direction)) is not None]
        if not levels:
            return None
        return max(levels) if self.direction == LOWER else min(levels)

    def walker(self, ev, image, value_range):
        return _SteppedWalker(ev, image, self)


_GRIDS: dict[tuple[Schedule, int, float], list[float]] = {}


def _grid_cache(schedule: Schedule, direction: int, limit: float) -> list[float]:
    key = (schedule, direction, limit)
    if key not in _GRIDS:
        _GRIDS[key] = schedule.grid(direction, limit)
    return _GRIDS[key]


class _SteppedWalker(_Walker):
    def __init__(self, ev: ShiftEvaluator, image: int, side: SteppedSide) -> None:
        super().__init__(ev, image, side.direction)
        self.side = side
        self.grid = side.grid()
        self.abs_grid = [abs(l) for l in self.grid]
        self.n = len(self.grid) - 1
        self.value0 = ev.value0[image]
        self.y = side.threshold(self.value0)
        self.last_gap: int | None = None
        self.lo, self.hi = 0, self.n
        self.update()

    def _entry(self, i: int):
        lam = self.grid[i]
        return self.ev.get(self.image, lam) if self.ev.known(self.image, lam) else None

    def _pred(self, i: int) -> bool | None:
        if i >= self.n:
            return True
        cur = self._entry(i)
        if cur is None:
            return None
        prev = self.value0 if i == 0 else (e.value if (e := self._entry(i - 1)) is not None else None)
        if prev is None:
            return None
        return self.side.stop_at(
            cur.value, prev, self.value0, cur.change, self.ev.recon_abs_sum[self.image], self.grid[i]
        )

    def update(self) -> None:
        preds = {i: p for i in range(self.n + 1) if (p := self._pred(i)) is not None}
        if preds.get(0):  # pred(0) is always known: lambda = 0 is cached
            self._finish(0)
            return
        if self.side.exhaustive:
            lo = 0
            while lo + 1 in preds and not preds[lo + 1]:
                lo += 1
            if lo + 1 in preds:  # the first true predicate of the known prefix
                self._finish(lo + 1)
            self.lo = lo
            return
        hi = min(i for i, p in preds.items() if p)
        lo = max(i for i, p in preds.items() if not p and i < hi)
        self.lo, self.hi = lo, hi
        if hi == lo + 1:
            self._finish(hi)

    def _finish(self, index: int) -> None:
        self.done = True
        self.bound = self.grid[index]
        self.reached_limit = False
        if index == self.n:
            cur = self._entry(index)
            prev = self._value(index - 1)
            self.reached_limit = cur is None or prev is None or not any(
                s.stops(cur.value, prev, self.value0, cur.change, self.ev.recon_abs_sum[self.image], self.direction)
                for s in self.side.stops
            )

    def _value(self, i: int) -> float | None:
        if i == 0:
            return self.value0
        e = self._entry(i)
        return None if e is None else e.value

    def propose(self) -> list[float]:
        if self.done:
            return []
        self.rounds += 1
        if self.side.exhaustive:
            start = self.lo + 1
            return [self.grid[i] for i in range(max(start, 1), min(start + self.side.chunk, self.n + 1))]
        lo, hi = self.lo, self.hi
        c = None
        gap = hi - lo
        slow = self.last_gap is not None and gap > self.last_gap // 2
        self.last_gap = gap
        estimates: list[float] = []
        if self.y is not None and not slow:
            a_l, a_v = self.grid[lo], self._value(lo)
            slope = None
            if lo == 0:
                slope = self.ev.slope[self.image]
            else:
                prev = next((j for j in range(lo - 1, -1, -1) if self._value(j) is not None), None)
                if prev is not None:
                    slope = (a_v - self._value(prev)) / (a_l - self.grid[prev])
            if slope is not None and slope > 0 and math.isfinite(slope):
                estimates.append(a_l + (self.y - a_v) / slope)
        if not slow:
            # image-change stops: the change grows about linearly with |lambda|
            for cond in self.side.stops:
                if isinstance(cond, ImageChangedBy):
                    goal = cond.fraction * self.ev.recon_abs_sum[self.image]
                    known = [(l, e.change) for l, e in self.ev.cache[self.image].items()
                             if self.direction * l > 0 and e.change > 0]
                    if known:
                        l, ch = min(known, key=lambda t: abs(math.log(t[1] / goal)) if goal > 0 else 0.0)
                        estimates.append(l * goal / ch)
        if estimates:
            c = bisect.bisect_left(self.abs_grid, min(abs(e) for e in estimates))
        if c is None:
            c = (lo + hi) // 2
        c = min(max(c, lo + 1), hi - 1)
        want = [j for j in (c - 2, c - 1, c) if j >= max(lo, 1) and self._entry(j) is None]
        return [self.grid[j] for j in want]


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """Bounds found for a batch (lists of length B).

    Attributes:
        lower, upper: the lambda bounds per image.
        lower_at_limit, upper_at_limit: the bound is the rule's limit (the stop was not reached).
        converged: every side met its stop condition within its round budget.
        rounds: batched evaluation rounds the search used.
        evaluations, passes: decoder+classifier image evaluations and forward passes it used.
    """

    lower: list[float]
    upper: list[float]
    lower_at_limit: list[bool]
    upper_at_limit: list[bool]
    converged: list[bool]
    rounds: int = 0
    evaluations: int = 0
    passes: int = 0


class LambdaSearch(ABC):
    """A lambda search rule: ``lower`` and ``upper`` sides (``None``: that bound is 0).

    Attributes:
        extra_sigmoid: apply a sigmoid to the classifier's target score before the gradient and
            the search (what some released code does on top of a probability).
        name: registry name.
    """

    name: str = ""
    lower: Side | None = None
    upper: Side | None = None
    extra_sigmoid: bool = False

    def transform(self, scores: torch.Tensor) -> torch.Tensor:
        """What the gradient and the search see: the target score, or its sigmoid."""
        return torch.sigmoid(scores) if self.extra_sigmoid else scores

    def value_range(self, output_kind: str) -> tuple[float, float] | None:
        """Range the searched value can take (used to skip unreachable targets)."""
        if self.extra_sigmoid or output_kind == "probability":
            return (0.0, 1.0)
        return None

    @abstractmethod
    def reference(self) -> SteppedSearch:
        """The released-code-style sequential walk that this rule corresponds to."""

    def run(self, ev: ShiftEvaluator, output_kind: str = "probability", progress: bool = False) -> SearchResult:
        """Search the bounds of every image of ``ev``, batching all images and sides per round."""
        before_e, before_p = ev.evaluations, ev.passes
        vr = self.value_range(output_kind)
        walkers: list[tuple[int, int, _Walker]] = []
        for b in range(ev.batch_size):
            for side in (self.lower, self.upper):
                if side is not None:
                    walkers.append((b, side.direction, side.walker(ev, b, vr)))
        rounds = 0
        bar = tqdm(desc=f"lambda search ({self.name})", disable=not progress, unit="round")
        while True:
            requests = [(b, lam) for b, _, w in walkers if not w.done for lam in w.propose()]
            if not requests:
                break
            ev.evaluate(requests)
            rounds += 1
            bar.update()
            for _, _, w in walkers:
                if not w.done:
                    w.update()
            if rounds > 4096:  # defensive: every walker has a round budget far below this
                raise RuntimeError("lambda search did not terminate")
        bar.close()
        lower = [0.0] * ev.batch_size
        upper = [0.0] * ev.batch_size
        lo_lim = [False] * ev.batch_size
        hi_lim = [False] * ev.batch_size
        conv = [True] * ev.batch_size
        for b, direction, w in walkers:
            if direction == LOWER:
                lower[b], lo_lim[b] = w.bound, w.reached_limit
            else:
                upper[b], hi_lim[b] = w.bound, w.reached_limit
            conv[b] = conv[b] and w.converged
        return SearchResult(lower, upper, lo_lim, hi_lim, conv, rounds,
                            ev.evaluations - before_e, ev.passes - before_p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower={self.lower!r}, upper={self.upper!r}, extra_sigmoid={self.extra_sigmoid})"


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

    def reference(self) -> SteppedSearch:
        sides = [SteppedSide(LOWER, ConstantStep(self.step), (ChangedBy(self.fall, self.relative, True),), self.limit)]
        if self.upper is not None:
            sides.append(
                SteppedSide(UPPER, ConstantStep(self.step), (ChangedBy(self.rise, self.relative, True),), self.limit)
            )
        return SteppedSearch(*sides, name="paper-sequential")


class SteppedSearch(LambdaSearch):
    """A search made of :class:`SteppedSide` s (the released code's rules)."""

    def __init__(
        self, lower: SteppedSide | None, upper: SteppedSide | None = None, extra_sigmoid: bool = False,
        name: str = "stepped",
    ) -> None:
        self.lower, self.upper, self.extra_sigmoid, self.name = lower, upper, extra_sigmoid, name

    def reference(self) -> SteppedSearch:
        return self


def _sides(exhaustive: bool, chunk: int, *sides: SteppedSide | None) -> list[SteppedSide | None]:
    return [
        None if s is None else SteppedSide(s.direction, s.schedule, s.stops, s.limit, exhaustive, chunk) for s in sides
    ]


class AppendixCSearch(SteppedSearch):
    """Paper Appendix C: lambda = 0, -10, -20, ... until the prediction stops falling, falls more
    than ``max_fall`` below its start, or lambda <= -``limit``. Upper bound 0."""

    def __init__(self, step: float = 10.0, max_fall: float = 0.5, limit: float = 1000.0,
                 exhaustive: bool = False, chunk: int = 16) -> None:
        lower = SteppedSide(LOWER, ConstantStep(step), (StopsMoving(), ChangedBy(max_fall)), limit)
        super().__init__(*_sides(exhaustive, chunk, lower), name="appendix-c")


class Gifsplanation2021Search(SteppedSearch):
    """The February 2021 gifsplanation code (the paper's tables): no extra sigmoid; steps of 1
    while ``|lambda| < 10``, then 10; lower side stops when the prediction rises, falls below
    start - 0.5, or at -1000; upper side stops when it falls, rises above start + 0.05, or at +1000."""

    def __init__(self, max_fall: float = 0.5, max_rise: float = 0.05, limit: float = 1000.0,
                 exhaustive: bool = False, chunk: int = 16) -> None:
        schedule = FineThenCoarse(1.0, 10.0)
        lower = SteppedSide(LOWER, schedule, (StopsMoving(), ChangedBy(max_fall)), limit)
        upper = SteppedSide(UPPER, schedule, (StopsMoving(), ChangedBy(max_rise)), limit)
        super().__init__(*_sides(exhaustive, chunk, lower, upper), name="gifsplanation-2021")


class GifsplanationCurrentSearch(SteppedSearch):
    """The current gifsplanation code: an extra sigmoid on the model's output (on top of a
    probability it squashes predictions into [0.5, 0.73]); lower side only; steps of 1 then 10;
    stops when the prediction rises, falls below start - 0.15, or at -1000."""

    def __init__(self, max_fall: float = 0.15, limit: float = 1000.0, extra_sigmoid: bool = True,
                 exhaustive: bool = False, chunk: int = 16) -> None:
        lower = SteppedSide(LOWER, FineThenCoarse(1.0, 10.0), (StopsMoving(), ChangedBy(max_fall)), limit)
        super().__init__(*_sides(exhaustive, chunk, lower), extra_sigmoid=extra_sigmoid, name="gifsplanation-current")


class LatentShiftPackageSearch(SteppedSearch):
    """``latentshift`` 0.0.6 on PyPI: lambda <- lambda - 10 + lambda // 10 (0, -10, -21, -34, ...),
    extra sigmoid by default (``apply_sigmoid=True``); stops when the prediction rises, falls under
    ``floor`` (0.05), falls more than ``pred_diff`` (0.8, absolute) below its start, lambda <=
    -``limit`` (3000), or ``sum|frame - recon| > max_pixel_diff * sum|recon|`` (5 %). Upper bound 0."""

    def __init__(self, pred_diff: float = 0.8, floor: float = 0.05, max_pixel_diff: float = 0.05,
                 limit: float = 3000.0, step: float = 10.0, extra_sigmoid: bool = True,
                 exhaustive: bool = False, chunk: int = 16) -> None:
        stops = (StopsMoving(), FallsBelow(floor), ChangedBy(pred_diff), ImageChangedBy(max_pixel_diff))
        lower = SteppedSide(LOWER, AcceleratingStep(step, 10.0), stops, limit)
        super().__init__(*_sides(exhaustive, chunk, lower), extra_sigmoid=extra_sigmoid, name="latentshift-0.0.6")


class FixedRange(LambdaSearch):
    """A given range, no search (the reference code's ``fixrange``)."""

    name = "fixed"

    def __init__(self, lower: float, upper: float = 0.0) -> None:
        if not lower <= upper:
            raise ValueError(f"FixedRange needs lower <= upper, got {lower} > {upper}")
        self.fixed = (float(lower), float(upper))

    def reference(self) -> SteppedSearch:
        raise NotImplementedError("a fixed range has no sequential search")

    def run(self, ev, output_kind="probability", progress=False) -> SearchResult:
        n = ev.batch_size
        return SearchResult([self.fixed[0]] * n, [self.fixed[1]] * n, [False] * n, [False] * n, [True] * n)

    def __repr__(self) -> str:
        return f"FixedRange{self.fixed}"


#: Rule classes by name (for the command line and notebooks).
SEARCH_RULES: dict[str, Callable[..., LambdaSearch]] = {
    "paper": PaperSearch,
    "appendix-c": AppendixCSearch,
    "gifsplanation-2021": Gifsplanation2021Search,
    "gifsplanation-current": GifsplanationCurrentSearch,
    "latentshift-0.0.6": LatentShiftPackageSearch,
}


def get_search(rule: str | LambdaSearch | None, **kwargs) -> LambdaSearch:
    """A rule object from a name in :data:`SEARCH_RULES` (or pass a rule object through)."""
    if rule is None:
        return PaperSearch(**kwargs)
    if isinstance(rule, LambdaSearch):
        return rule
    if isinstance(rule, str) and rule in SEARCH_RULES:
        return SEARCH_RULES[rule](**kwargs)
    raise UnknownNameError(rule, SEARCH_RULES, "lambda search rule")
