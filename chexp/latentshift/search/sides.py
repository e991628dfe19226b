"""The two sides of a lambda search and the interface of a side's solver.

A search has a lower side (``direction`` -1: lambda < 0, the prediction falls, the feature is
removed) and optionally an upper side (+1: lambda > 0, the prediction rises, the feature is
exaggerated). A :class:`Side` describes what to find; its :class:`Walker` finds it for one image,
proposing lambdas round by round and reading their results from the shared
:class:`~chexp.latentshift.evaluator.ShiftEvaluator` cache.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..evaluator import ShiftEvaluator

__all__ = ["LOWER", "UPPER", "Side", "Walker"]

#: Direction of the lower side (lambda < 0) and of the upper side (lambda > 0).
LOWER, UPPER = -1, 1


class Walker(ABC):
    """Search state of one image on one side; proposes lambdas, reads results from the cache.

    Attributes:
        done: the bound is found (no more proposals).
        bound: the lambda bound (valid once ``done``).
        reached_limit: the bound is the side's limit (the stop was not reached).
        converged: the side met its stop condition within its round budget.
        rounds: rounds in which this walker proposed lambdas.
    """

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
    def propose(self) -> list[float]:
        """The lambdas to evaluate next (empty when done)."""

    @abstractmethod
    def update(self) -> None:
        """Read the evaluated lambdas from the cache; set ``done`` and ``bound`` when found."""


class Side(ABC):
    """One side of a search (``direction`` -1: lower bound, +1: upper bound)."""

    direction: int

    @abstractmethod
    def walker(self, ev: ShiftEvaluator, image: int, value_range: tuple[float, float] | None) -> Walker:
        """A fresh solver of this side for image ``image`` of ``ev``."""
