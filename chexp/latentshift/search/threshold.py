"""Continuous threshold side (paper section 4.2): Newton step, secant, then safeguarded secant.

:class:`ThresholdSide` finds the lambda where the prediction curve ``g(lambda)`` has moved by a
given change from ``g(0)``. Its walker takes a Newton step from lambda = 0 using the known slope
``g'(0) = |dz|^2`` (chain rule), then extrapolates by secant until the target is bracketed, then
refines by safeguarded secant / bisection until ``|g(lambda) - target| <= rtol * |target - g(0)|``.
On a linear curve this takes one evaluation per side; the bound is always an evaluated lambda, so
its frame is reused as the first/last output frame. Steps are taken on ``logit(g)`` when ``g`` is
a probability (the curve is flat near 0 and 1 and a step from its slope would overshoot).

A curve can turn before it reaches the level (the prediction falls a little, then rises again as
lambda moves further out). Once an evaluated lambda is worse than a nearer one (higher on the
lower side, lower on the upper side), the walker stops extrapolating outward and searches the
turn by golden section for the rest of its rounds (the level may still be crossed there). If the
level is never crossed, the bound falls back to the evaluated lambda with the lowest prediction
(lower side) or the highest (upper side), flagged ``converged=False``: never a far lambda whose
frame moves the prediction the wrong way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import InvalidParameterError
from ..evaluator import ShiftEvaluator
from .sides import LOWER, UPPER, Side, Walker

__all__ = ["ThresholdSide"]


@dataclass(frozen=True)
class ThresholdSide(Side):
    """Find lambda where the prediction has moved by ``change`` (a fraction of ``|g(0)|`` if relative).

    Args:
        direction: -1 (lower bound, the prediction falls) or +1 (upper bound, it rises).
        change: 0.3 for "falls by 30 %", 0.05 for "rises by 5 %".
        relative: fraction of ``|g(0)|`` (paper) or prediction units.
        limit: largest ``|lambda|``; if the target is not reached before, the bound is the limit
            (or, on a curve that turned, the best evaluated lambda; see the module docstring).
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
            raise InvalidParameterError(f"direction must be -1 or +1, got {self.direction}")
        if self.change < 0 or self.limit <= 0 or self.rtol <= 0 or self.probes < 1 or self.max_rounds < 1:
            raise InvalidParameterError(f"invalid {self!r}: change >= 0, limit > 0, rtol > 0, probes >= 1 needed")

    def target(self, value0: float) -> float:
        amount = self.change * abs(value0) if self.relative else self.change
        return value0 + self.direction * amount

    def walker(self, ev, image, value_range):
        return _ThresholdWalker(ev, image, self, value_range)


class _ThresholdWalker(Walker):
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
            ((lam, e.value) for lam, e in self.ev.cache[self.image].items() if d * lam >= 0), key=lambda t: abs(t[0])
        )
        first = next((k for k, (_, v) in enumerate(pts) if self._crossed(v)), None)
        window = pts if first is None else pts[: first + 1]
        good = [p for p in window if abs(p[1] - self.y) <= self.tol]
        self.inside = pts if first is None else pts[:first]
        self.crossed = None if first is None else pts[first]
        self.best = max(pts, key=lambda p: (d * p[1], -abs(p[0])))
        #: the curve turned: a farther lambda is worse than the best one (no crossing yet)
        self.turned = first is None and d * pts[-1][1] < d * self.best[1]
        if good:
            self._finish(min(good, key=lambda p: abs(p[1] - self.y))[0], converged=True)
        elif first is None and not self.turned and abs(pts[-1][0]) >= self.limit * (1 - 1e-12):
            self._finish(pts[-1][0], converged=False)
        elif self.rounds >= self.side.max_rounds:
            self._finish(self.crossed[0] if self.crossed else self.best[0], converged=False)

    def _finish(self, bound: float, converged: bool) -> None:
        self.done, self.bound, self.converged = True, float(bound), converged
        self.reached_limit = not converged and self.crossed is None and abs(self.bound) >= self.limit * (1 - 1e-12)

    def _turn_probe(self) -> float:
        """Golden-section probe of the turn: in the larger interval next to the best lambda."""
        lams = sorted((lam for lam, _ in self.inside), key=abs)
        k = lams.index(self.best[0])
        left = lams[k - 1] if k > 0 else None
        right = lams[k + 1] if k + 1 < len(lams) else None
        b = self.best[0]
        far = right if left is None or (right is not None and abs(right - b) >= abs(b - left)) else left
        return b + 0.381966 * (far - b)

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
        elif self.turned:
            lams = [self._turn_probe()]
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
            self._finish(self.crossed[0] if self.crossed else self.best[0], converged=False)
        return out

