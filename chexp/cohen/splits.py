"""Patient-level train / validation / test splits, reproducible from a seed.

Images of one patient never fall in two splits. Patients are first joined into groups when
they share an image file (the Cohen metadata lists four files under two patient ids each), then
whole groups are shuffled with ``numpy.random.default_rng(seed)`` inside each stratum (for the
Cohen manifest: "has a BrixIA score" or not, so that every split holds scored images) and cut
at the requested image fractions.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from ..errors import InvalidParameterError

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)


def connected_groups(pairs: Iterable[tuple[Hashable, Hashable]]) -> dict[Hashable, Hashable]:
    """Connected components of the ``(a, b)`` links; maps each item to its component's smallest
    member (by str), items in order of first appearance."""
    pairs = list(pairs)
    items = list(dict.fromkeys(x for pair in pairs for x in pair))
    index = {x: i for i, x in enumerate(items)}
    links = np.array([[index[a], index[b]] for a, b in pairs], dtype=np.intp).reshape(-1, 2)
    graph = coo_array((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(len(items), len(items)))
    _, component = connected_components(graph, directed=False)
    smallest: dict[int, Hashable] = {}
    for x, c in zip(items, component, strict=True):
        if c not in smallest or str(x) < str(smallest[c]):
            smallest[c] = x
    return {x: smallest[c] for x, c in zip(items, component, strict=True)}


def split_groups(
    groups: Sequence[Hashable],
    strata: Sequence[Hashable] | None = None,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> list[str]:
    """Assign each item to ``"train"``, ``"val"`` or ``"test"`` so that no group spans two splits.

    Args:
        groups: group id of each item (e.g. patient), length N.
        strata: stratum of each item; a group's stratum is that of its first item
            (``None``: one stratum).
        seed: seed of the shuffle.
        fractions: wanted share of *items* per split (train, val, test); must sum to 1.

    Returns:
        The split name of each item, length N.

    Within each stratum, groups are sorted, shuffled, and appended to a split until that
    split's cumulative share of items reaches its fraction.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != len(SPLITS) or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise InvalidParameterError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    n = len(groups)
    strata = list(strata) if strata is not None else [0] * n
    if len(strata) != n:
        raise InvalidParameterError(f"strata must have one entry per group ({n}), got {len(strata)}")
    rng = np.random.default_rng(seed)
    first_stratum: dict[Hashable, Hashable] = {}
    sizes: dict[Hashable, int] = {}
    for g, s in zip(groups, strata, strict=True):
        first_stratum.setdefault(g, s)
        sizes[g] = sizes.get(g, 0) + 1
    assignment: dict[Hashable, str] = {}
    for stratum in sorted(set(first_stratum.values()), key=str):
        members = sorted((g for g, s in first_stratum.items() if s == stratum), key=str)
        order = [members[i] for i in rng.permutation(len(members))]
        total = sum(sizes[g] for g in order)
        bounds = np.cumsum(fractions) * total
        done = 0
        for g in order:
            # the split whose cumulative bound the group's midpoint falls under
            mid = done + sizes[g] / 2
            k = int(np.searchsorted(bounds, mid, side="right"))
            assignment[g] = SPLITS[min(k, len(SPLITS) - 1)]
            done += sizes[g]
    return [assignment[g] for g in groups]
