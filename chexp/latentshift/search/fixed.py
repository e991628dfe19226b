"""A given lambda range, no search (the released code's ``fixrange``)."""

from __future__ import annotations

from ...errors import InvalidParameterError
from .rule import LambdaSearch, SearchResult
from .stepped import SteppedSearch

__all__ = ["FixedRange"]


class FixedRange(LambdaSearch):
    """A given range, no search (the reference code's ``fixrange``)."""

    name = "fixed"

    def __init__(self, lower: float, upper: float = 0.0) -> None:
        if not lower <= upper:
            raise InvalidParameterError(f"FixedRange needs lower <= upper, got lower={lower} > upper={upper}")
        self.fixed = (float(lower), float(upper))

    def reference(self, value_range: tuple[float, float] | None = None) -> SteppedSearch:
        raise InvalidParameterError(
            "FixedRange has no sequential reference walk (it searches nothing); use a stepped rule"
        )

    def run(self, ev, output_kind="probability", progress=False) -> SearchResult:
        n = ev.batch_size
        return SearchResult([self.fixed[0]] * n, [self.fixed[1]] * n, [False] * n, [False] * n, [True] * n, [True] * n)

    def __repr__(self) -> str:
        return f"FixedRange{self.fixed}"
