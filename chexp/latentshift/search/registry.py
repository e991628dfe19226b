"""Rule registry: the names used by the command line and the notebooks."""

from __future__ import annotations

from collections.abc import Callable

from ...errors import UnknownNameError
from .paper import PaperAbsoluteSearch, PaperSearch
from .released import AppendixCSearch, Gifsplanation2021Search, GifsplanationCurrentSearch, LatentShiftPackageSearch
from .rule import LambdaSearch

__all__ = ["SEARCH_RULES", "get_search"]


#: Rule classes by name (for the command line and notebooks).
SEARCH_RULES: dict[str, Callable[..., LambdaSearch]] = {
    "paper": PaperSearch,
    "paper-absolute": PaperAbsoluteSearch,
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
