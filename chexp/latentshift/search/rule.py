"""A lambda search rule and its batched driver.

:meth:`LambdaSearch.run` makes one walker per image and side and, every round, evaluates the
lambdas all of them propose in one batched forward pass (:class:`ShiftEvaluator`), until every
walker has its bound. None of the rules runs one sequential decode per step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...progress import tqdm
from ..evaluator import ShiftEvaluator
from .sides import LOWER, Side, Walker

if TYPE_CHECKING:
    from .stepped import SteppedSearch

__all__ = ["SearchResult", "LambdaSearch"]


@dataclass
class SearchResult:
    """Bounds found for a batch (lists of length B).

    Attributes:
        lower, upper: the lambda bounds per image.
        lower_at_limit, upper_at_limit: the bound is the rule's limit (the stop was not reached).
        lower_converged, upper_converged: the side met its stop condition within its round
            budget (a side the rule does not search counts as converged). A paper-rule side that
            did not converge holds its fallback: the evaluated lambda with the lowest (lower
            side) or highest (upper side) prediction, see :mod:`.threshold`.
        rounds: batched evaluation rounds the search used.
        evaluations, passes: decoder+classifier image evaluations and forward passes it used.
    """

    lower: list[float]
    upper: list[float]
    lower_at_limit: list[bool]
    upper_at_limit: list[bool]
    lower_converged: list[bool]
    upper_converged: list[bool]
    rounds: int = 0
    evaluations: int = 0
    passes: int = 0

    @property
    def converged(self) -> list[bool]:
        """Per image: both sides converged."""
        return [lo and hi for lo, hi in zip(self.lower_converged, self.upper_converged, strict=True)]


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
    def reference(self, value_range: tuple[float, float] | None = None) -> SteppedSearch:
        """The released-code-style sequential walk that this rule corresponds to; ``value_range``
        (:meth:`value_range`) lets a rule that adapts unreachable levels do the same stepwise."""

    def run(self, ev: ShiftEvaluator, output_kind: str = "probability", progress: bool = False) -> SearchResult:
        """Search the bounds of every image of ``ev``, batching all images and sides per round."""
        before_e, before_p = ev.evaluations, ev.passes
        vr = self.value_range(output_kind)
        walkers: list[tuple[int, int, Walker]] = []
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
            if rounds > 4096:  # internal invariant (a chexp bug, not user input): every walker stops far earlier
                raise RuntimeError("lambda search did not terminate")
        bar.close()
        lower = [0.0] * ev.batch_size
        upper = [0.0] * ev.batch_size
        lo_lim = [False] * ev.batch_size
        hi_lim = [False] * ev.batch_size
        lo_conv = [True] * ev.batch_size
        hi_conv = [True] * ev.batch_size
        for b, direction, w in walkers:
            if direction == LOWER:
                lower[b], lo_lim[b], lo_conv[b] = w.bound, w.reached_limit, w.converged
            else:
                upper[b], hi_lim[b], hi_conv[b] = w.bound, w.reached_limit, w.converged
        return SearchResult(lower, upper, lo_lim, hi_lim, lo_conv, hi_conv, rounds,
                            ev.evaluations - before_e, ev.passes - before_p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower={self.lower!r}, upper={self.upper!r}, extra_sigmoid={self.extra_sigmoid})"
