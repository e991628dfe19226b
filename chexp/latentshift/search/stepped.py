"""Stepped sides: the released code's lambda grid and stop conditions, searched in batches.

A :class:`SteppedSide` is a released-code walk: lambda steps from 0 along its
:class:`~.schedules.Schedule`'s grid and stops at the first grid point where one of its
:class:`~.stops.StopCondition` s (or the limit) holds. On a curve with local rises a stop test
can switch from false to true and back many times, so only the first switch is the walk's
bound, and confirming it takes the test at every grid point before it. The walker therefore
scans the grid from 0 in batched chunks (``chunk`` points in the first round, twice as many in
each next one), and meanwhile aims a few probes at the level where the walk would stop on a
monotone curve (Newton-guided over grid indices): a probe where the test holds caps the scan, so
on a monotone curve the scan stops there instead of overshooting. ``exhaustive=True`` scans in
rounds of ``chunk`` points without probes (fewest evaluations, most rounds). Either way the bound
is the sequential walk's on any curve. :class:`SteppedSearch` is a rule made of such sides.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from ..evaluator import ShiftEvaluator
from .rule import LambdaSearch
from .schedules import Schedule
from .sides import LOWER, Side, Walker
from .stops import ImageChangedBy, StopCondition

__all__ = ["SteppedSide", "SteppedSearch"]


@dataclass(frozen=True)
class SteppedSide(Side):
    """A stepped walk as in the released code: a lambda grid and stop conditions.

    Args:
        direction: -1 (lower) or +1 (upper).
        schedule: how lambda steps (grid from 0 up to the first point at ``|lambda| >= limit``).
        stops: stop conditions checked at each grid point (the limit is always one).
        limit: largest ``|lambda|``.
        exhaustive: scan the grid in rounds of ``chunk`` points, without the Newton-guided
            probes or the growing chunks (same bounds; fewer evaluations, more rounds).
        chunk: grid points per image in the first scan round (every round if ``exhaustive``).
    """

    direction: int
    schedule: Schedule
    stops: tuple[StopCondition, ...]
    limit: float = 1000.0
    exhaustive: bool = False
    chunk: int = 8

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


class _SteppedWalker(Walker):
    def __init__(self, ev: ShiftEvaluator, image: int, side: SteppedSide) -> None:
        super().__init__(ev, image, side.direction)
        self.side = side
        self.grid = side.grid()
        self.abs_grid = [abs(lam) for lam in self.grid]
        self.n = len(self.grid) - 1
        self.value0 = ev.value0[image]
        self.y = side.threshold(self.value0)
        self.last_gap: int | None = None
        self.lo, self.hi = 0, self.n
        #: the stop test is known false at grid points 1..prefix (the walk passes them)
        self.prefix = 0
        #: grid points of the next scan of the prefix (doubles each round unless exhaustive)
        self.scan = side.chunk
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
        hi = min(i for i, p in preds.items() if p)
        while self.prefix + 1 < hi and self.prefix + 1 in preds:
            self.prefix += 1
        # the walk's stop is the first true test: every grid point before it must be known false;
        # the limit point is evaluated too, to tell a stop there from the limit
        if self.prefix + 1 == hi and (hi < self.n or self._entry(hi) is not None):
            self._finish(hi)
            return
        self.lo, self.hi = max(i for i, p in preds.items() if not p and i < hi), hi

    def _finish(self, index: int) -> None:
        self.done = True
        self.bound = self.grid[index]
        self.reached_limit = False
        if index == self.n:  # the limit, unless a stop condition holds there too
            cur, prev = self._entry(index), self._value(index - 1)
            self.reached_limit = not any(
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
        scan = range(self.prefix + 1, min(self.prefix + self.scan, self.hi) + 1)
        want = {j for j in scan if self._entry(j) is None}
        if not self.side.exhaustive:
            self.scan *= 2
            if self.hi > self.lo + 1:
                want.update(self._guess())
        return [self.grid[j] for j in sorted(want)]

    def _guess(self) -> list[int]:
        """Unknown grid indices at the predicted stop (the Newton step on the level, or the
        image-change estimate) and the two before it (a stop test needs its predecessor)."""
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
                    known = [(lam, e.change) for lam, e in self.ev.cache[self.image].items()
                             if self.direction * lam > 0 and e.change > 0]
                    if known:
                        lam, ch = min(known, key=lambda t: abs(math.log(t[1] / goal)) if goal > 0 else 0.0)
                        estimates.append(lam * goal / ch)
        if estimates:
            c = bisect.bisect_left(self.abs_grid, min(abs(e) for e in estimates))
        if c is None:
            c = (lo + hi) // 2
        c = min(max(c, lo + 1), hi - 1)
        return [j for j in (c - 2, c - 1, c) if j >= max(lo, 1) and self._entry(j) is None]


class SteppedSearch(LambdaSearch):
    """A search made of :class:`SteppedSide` s (the released code's rules)."""

    def __init__(
        self, lower: SteppedSide | None, upper: SteppedSide | None = None, extra_sigmoid: bool = False,
        name: str = "stepped",
    ) -> None:
        self.lower, self.upper, self.extra_sigmoid, self.name = lower, upper, extra_sigmoid, name

    def reference(self, value_range: tuple[float, float] | None = None) -> SteppedSearch:
        return self
