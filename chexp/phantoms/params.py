"""Per-sample random parameters: uniform draws mapped to named, batched parameter arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidParameterError


class ParamSpace:
    """Named parameters, each drawn uniformly from ``[low, high]``.

    ``space.draw(u)`` maps a (B, K) array of uniforms in [0, 1) (K = ``len(space)``) to a
    :class:`ParamBatch` of (B, 1, 1) float32 arrays that broadcast against (B, S, S) images.
    """

    def __init__(self, ranges: Sequence[tuple[str, float, float]]) -> None:
        self.names = tuple(name for name, _, _ in ranges)
        if len(set(self.names)) != len(self.names):
            duplicates = sorted({n for n in self.names if self.names.count(n) > 1})
            raise InvalidParameterError(f"ranges must name each parameter once, got duplicates {duplicates}")
        self.low = np.array([lo for _, lo, _ in ranges], dtype=np.float64)
        self.high = np.array([hi for _, _, hi in ranges], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.names)

    def draw(self, u: np.ndarray) -> ParamBatch:
        u = np.asarray(u, dtype=np.float64)
        if u.ndim != 2 or u.shape[1] < len(self):
            raise InvalidParameterError(f"u must be uniforms of shape (B, >={len(self)}), got shape {u.shape}")
        values = self.low + (self.high - self.low) * u[:, : len(self)]
        return ParamBatch({n: values[:, k] for k, n in enumerate(self.names)})


class ParamBatch:
    """A batch of named per-sample parameters; attribute access gives (B, 1, 1) float32 arrays.

    ``batch.raw(name)`` gives the (B,) float64 values; ``batch.take(rows)`` a sub-batch.
    """

    def __init__(self, values: dict[str, np.ndarray]) -> None:
        self._values = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            v = self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None
        return v.astype(np.float32)[:, None, None]

    def raw(self, name: str) -> np.ndarray:
        return self._values[name]

    def set(self, name: str, value: np.ndarray) -> None:
        """Add a derived parameter, given as (B,) or (B, 1, 1)."""
        self._values[name] = np.asarray(value, dtype=np.float64).reshape(-1)

    def take(self, rows: np.ndarray) -> ParamBatch:
        return ParamBatch({k: v[rows] for k, v in self._values.items()})

    def __len__(self) -> int:
        return len(next(iter(self._values.values()))) if self._values else 0

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(self._values)
