"""Mean and spread of a table over the runs of a sweep that differ only in their seed.

The runs of one group wrote the same table (``outputs/<stem>/<table>.csv``) with different numbers.
:func:`summarize_tables` lines them up row by row: a column with the same values in every run
identifies the rows (task, method, step, ...) and is kept; a numeric column whose values differ is
summarized per row as :data:`STATS` (with a single run, every numeric column is); a text column
whose values differ (numbers formatted as text, such as ``"0.20±0.03"``) is left out. Tables that
do not line up (different columns or row counts) are not summarized.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["STATS", "TableSummary", "over_runs", "summarize_tables", "markdown_table"]

#: Columns of a summary besides the row keys and ``quantity`` (the summarized column's name):
#: mean, sample standard deviation (ddof 1), smallest and largest value, the 95 % t-interval of
#: the mean (NaN for one run), and the number of runs with a value.
STATS = ("mean", "std", "min", "max", "ci95_low", "ci95_high", "n_runs")
QUANTITY = "quantity"


@dataclass(frozen=True)
class TableSummary:
    """Outcome of :func:`summarize_tables`.

    Attributes:
        table: key columns, ``quantity`` and :data:`STATS`, one row per (row, varying column);
            ``None`` when the tables could not be lined up.
        dropped: text columns that differ between runs (not summarized).
        reason: why ``table`` is ``None`` (empty otherwise).
    """

    table: pd.DataFrame | None
    dropped: tuple[str, ...] = ()
    reason: str = ""


def _same(column: Sequence[pd.Series]) -> bool:
    first = column[0]
    return all(series.equals(first) for series in column[1:])


def over_runs(values: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`STATS` of ``values`` (runs x rows) over runs, NaN-aware."""
    from scipy import stats

    n = np.sum(~np.isnan(values), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows, one run: NaN, as documented
        mean = np.nanmean(values, axis=0)
        std = np.where(n > 1, np.nanstd(values, axis=0, ddof=1), np.nan)
        half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * std / np.sqrt(n)
        return {"mean": mean, "std": std, "min": np.nanmin(values, axis=0), "max": np.nanmax(values, axis=0),
                "ci95_low": mean - half, "ci95_high": mean + half, "n_runs": n}


def summarize_tables(tables: Sequence[pd.DataFrame]) -> TableSummary:
    """Summarize the same table from several runs (see the module docstring).

    Args:
        tables: one table per run (at least one), as read from its CSV.

    Returns:
        A :class:`TableSummary`. Its table has the key columns, then ``quantity`` (the name of a
        column that varies), then :data:`STATS` over the runs; rows in the tables' row order,
        each varying column in turn.
    """
    columns = list(tables[0].columns)
    if any(list(t.columns) != columns for t in tables[1:]):
        return TableSummary(None, reason="the runs' tables have different columns")
    if any(len(t) != len(tables[0]) for t in tables[1:]):
        return TableSummary(None, reason="the runs' tables have different numbers of rows")
    keys, varying, dropped = [], [], []
    for name in columns:
        series = [t[name].reset_index(drop=True) for t in tables]
        numeric = all(pd.api.types.is_numeric_dtype(s) for s in series)
        if _same(series) and not (len(tables) == 1 and numeric):  # one run: every number is summarized
            keys.append(name)
        elif numeric:
            varying.append(name)
        else:
            dropped.append(name)
    clash = [c for c in keys if c in (QUANTITY, *STATS)]
    if clash:
        return TableSummary(None, reason=f"a row key is named like a statistic ({', '.join(clash)})")
    base = tables[0][keys].reset_index(drop=True)
    parts = []
    for name in varying:
        values = np.stack([t[name].to_numpy(dtype=float) for t in tables])
        part = base.copy()
        part[QUANTITY] = name
        for stat, column in over_runs(values).items():
            part[stat] = column
        parts.append(part)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*keys, QUANTITY, *STATS])
    return TableSummary(table, tuple(dropped))


def _format(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "-" if np.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ") or "-"


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a Markdown pipe table (floats to 4 significant digits, NaN as ``-``)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join(":--" if not pd.api.types.is_numeric_dtype(table[c]) else "--:" for c in table.columns)
             + "|"]
    lines += ["| " + " | ".join(_format(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
