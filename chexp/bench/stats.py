"""Summaries of per-image benchmark values."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidParameterError

__all__ = ["spread"]


def spread(values: Sequence[float]) -> dict[str, float | int]:
    """Median, quartiles and interquartile range of per-image values.

    Args:
        values: one value per image (at least one).

    Raises:
        InvalidParameterError: ``values`` is empty.

    Returns:
        ``{"median", "q1", "q3", "iqr", "n"}`` (numpy's linear-interpolation quartiles).
    """
    import numpy as np  # not at import: ``chexp bench --help`` imports this module

    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise InvalidParameterError("values: the spread of no values is undefined (give at least one)")
    q1, median, q3 = (float(v) for v in np.percentile(arr, [25, 50, 75]))
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1, "n": int(arr.size)}
