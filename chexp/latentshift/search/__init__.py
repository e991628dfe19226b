"""Lambda search rules of Latent Shift, as objects.

A rule decides the lambda range ``[lower, upper]`` whose frames ``D(z + lambda * dz)`` make up an
explanation. Every rule is a :class:`LambdaSearch` with a lower side (lambda < 0, removing the
feature) and optionally an upper side (lambda > 0, exaggerating it).

Presets and their sources (``gifsplanation``: ``attribution.py`` of github.com/mlmed/gifsplanation):

=====================================  ============================================================
:class:`PaperSearch` (``paper``,       paper section 4.2 read relative to the lambda = 0
default; :mod:`.paper`)                prediction (an interpretation): the prediction falls by
                                       30 % (lower bound) and rises by 5 % (upper bound) of it.
                                       Limit 1000 as in the code. A side whose curve turns before
                                       the level falls back to its best evaluated lambda,
                                       flagged ``converged=False``.
:class:`PaperAbsoluteSearch`           section 4.2 in probability units: falls by 0.30, rises by
(``paper-absolute``)                   0.05 (the released code's only upper rule is + 0.05).
:class:`AppendixCSearch`               paper Appendix C: step -10 from 0 until the prediction stops
(``appendix-c``)                       falling, falls more than 0.5 below the start, or
                                       lambda <= -1000.
:class:`Gifsplanation2021Search`       gifsplanation ea2d16c (2021-01-22) to 5e78981 (2021-03-16),
(``gifsplanation-2021``)               the code of the paper's tables: steps of 1 up to
                                       |lambda| = 10 then 10; lower stops at a rise, at start - 0.5
                                       or -1000; upper stops at a fall, at start + 0.05 or +1000.
:class:`GifsplanationCurrentSearch`    gifsplanation 2636048 (2021-06-14) to its last version
(``gifsplanation-current``)            13971c1 (2022-07-17): extra sigmoid on the model output,
                                       lower side only, stops at start - 0.15.
:class:`LatentShiftPackageSearch`      ``latentshift`` 0.0.6 (PyPI): steps 0, -10, -21, -34, ...
(``latentshift-0.0.6``)                (lambda - 10 + lambda // 10), extra sigmoid, stops at a rise,
                                       below 0.05, at start - 0.8, at lambda <= -3000, or when the
                                       image changed by more than 5 % of its total absolute
                                       intensity.
:class:`FixedRange`                    a given ``[lower, upper]``, no search (the code's
                                       ``fixrange``).
=====================================  ============================================================

None of the rules runs one sequential decode per step: :meth:`LambdaSearch.run` evaluates the
next lambdas of all images and both sides in one batched forward pass per round, and the next
lambdas are chosen by root finding on the one-dimensional prediction curve ``g(lambda)``.

Modules:

* :mod:`.paper` (:class:`PaperSearch`, :class:`PaperAbsoluteSearch`), :mod:`.released` (the four
  stepped presets),
  :mod:`.fixed` (:class:`FixedRange`), :mod:`.registry` (:data:`SEARCH_RULES`, :func:`get_search`);
* :mod:`.rule`: :class:`LambdaSearch` (the batched driver) and :class:`SearchResult`;
* solvers, one per kind of side (:mod:`.sides`: the :class:`Side` / walker interface):
  :mod:`.threshold` (:class:`ThresholdSide`, a continuous level: Newton step from the known slope
  ``g'(0) = |dz|^2``, secant, safeguarded secant) and :mod:`.stepped` (:class:`SteppedSide`, the
  released code's grid and stop conditions: a batched scan of the grid from 0 in growing chunks,
  capped by Newton-guided probes, which returns the released walk's first stop on any curve);
* building blocks of the stepped rules: :mod:`.stops` (stop conditions) and :mod:`.schedules`
  (lambda steps).

Each rule's :meth:`LambdaSearch.reference` is the released-code-style sequential walk (used by
:mod:`chexp.latentshift.reference` and the benchmark).
"""

from __future__ import annotations

from .fixed import FixedRange
from .paper import PaperAbsoluteSearch, PaperSearch
from .registry import SEARCH_RULES, get_search
from .released import AppendixCSearch, Gifsplanation2021Search, GifsplanationCurrentSearch, LatentShiftPackageSearch
from .rule import LambdaSearch, SearchResult
from .schedules import AcceleratingStep, ConstantStep, FineThenCoarse, Schedule
from .sides import Side
from .stepped import SteppedSearch, SteppedSide
from .stops import ChangedBy, FallsBelow, ImageChangedBy, StopCondition, StopsMoving
from .threshold import ThresholdSide

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
    "PaperAbsoluteSearch",
    "SteppedSearch",
    "AppendixCSearch",
    "Gifsplanation2021Search",
    "GifsplanationCurrentSearch",
    "LatentShiftPackageSearch",
    "FixedRange",
    "SEARCH_RULES",
    "get_search",
]
