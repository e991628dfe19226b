"""Step schedules of the stepped rules: how the released code moves lambda from 0."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ...errors import InvalidParameterError
from .sides import LOWER

__all__ = ["Schedule", "ConstantStep", "FineThenCoarse", "AcceleratingStep"]


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
                raise InvalidParameterError(f"schedule {self!r} does not move lambda away from 0 at {lam}")
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
