"""Per-unit feature statistics for the bottleneck's noise: streaming mean, std and activity.

IBA replaces information at a layer by noise ``eps ~ N(mu, sigma)`` with a mean and standard
deviation per unit (channel x position) estimated over a dataset (the reference recommends
10,000 images). :class:`UnitStatistics` accumulates them in a single streaming pass (Chan et
al.'s parallel form of Welford's algorithm, in float64), counts how often each unit is non-zero
(units active in at most 1% of the images are masked out), and is saved as a small file beside
the model it belongs to (:func:`statistics_path`), loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import (
    CorruptFileError,
    DataUnavailableError,
    InvalidTypeError,
    NotFittedError,
    StatisticsMismatchError,
)
from ..models.modules import eval_mode, resolve_layer
from ..progress import tqdm
from .hooks import capture_outputs

_FORMAT = 1


def model_fingerprint(model: nn.Module) -> str:
    """sha256 over the names, shapes and values of a model's parameters and buffers."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def statistics_path(model_file: str | Path, layer: str) -> Path:
    """Where the statistics of ``layer`` live beside a model file or model folder.

    ``model.pt`` -> ``model.iba-features.denseblock3.pt``; a folder -> ``folder/iba-<layer>.pt``.
    """
    model_file = Path(model_file)
    if model_file.is_dir():
        return model_file / f"iba-{layer}.pt"
    return model_file.with_name(f"{model_file.stem}.iba-{layer}.pt")


def _batches(images: torch.Tensor | Iterable[Any], batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        for start in range(0, images.shape[0], batch_size):
            yield images[start : start + batch_size]
        return
    for item in images:
        if isinstance(item, (tuple, list)):
            item = item[0]
        elif isinstance(item, dict):
            item = item["image"]
        if not isinstance(item, torch.Tensor):
            raise InvalidTypeError(
                f"images must be a tensor (N, 1, H, W) or an iterable of image batches (B, 1, H, W) "
                f"(or (image, ...) tuples, or dicts with an 'image' key), got a batch of type "
                f"{type(item).__name__}"
            )
        yield item if item.dim() == 4 else item.unsqueeze(0)


class UnitStatistics:
    """Streaming per-unit statistics of one layer's feature maps ``(C, h, w)``.

    Attributes:
        layer: full name of the layer the statistics belong to (or ``None``).
        count: number of feature maps seen.
        fingerprint: sha256 of the model's weights when fitted with :meth:`fit` (or ``None``).
    """

    def __init__(self, layer: str | None = None) -> None:
        self.layer = layer
        self.count = 0
        self.fingerprint: str | None = None
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None
        self._nonzero: torch.Tensor | None = None

    # -- accumulation ---------------------------------------------------------------------------
    def update(self, features: torch.Tensor) -> UnitStatistics:
        """Add a batch of feature maps ``(N, C, h, w)``; returns ``self``."""
        if features.dim() != 4:
            raise StatisticsMismatchError(f"feature maps must be (N, C, h, w), got {tuple(features.shape)}")
        if not bool(torch.isfinite(features).all()):
            raise StatisticsMismatchError("feature maps contain NaN or infinite values")
        f = features.detach().to(torch.float64)
        if self._mean is not None and tuple(f.shape[1:]) != self.shape:
            raise StatisticsMismatchError(
                f"feature maps of shape {tuple(f.shape[1:])} do not match the statistics' {self.shape}"
            )
        n_b = f.shape[0]
        mean_b = f.mean(0)
        m2_b = ((f - mean_b) ** 2).sum(0)
        nonzero_b = (f != 0).sum(0).to(torch.int64)
        if self._mean is None:
            self._mean, self._m2, self._nonzero = mean_b, m2_b, nonzero_b
        else:
            assert self._m2 is not None and self._nonzero is not None
            total = self.count + n_b
            delta = mean_b.to(self._mean.device) - self._mean
            self._mean = self._mean + delta * (n_b / total)
            self._m2 = self._m2 + m2_b.to(self._m2.device) + delta**2 * (self.count * n_b / total)
            self._nonzero = self._nonzero + nonzero_b.to(self._nonzero.device)
        self.count += n_b
        return self

    # -- results --------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.count >= 2

    @property
    def shape(self) -> tuple[int, ...]:
        self._require()
        assert self._mean is not None
        return tuple(self._mean.shape)

    def _require(self) -> None:
        if self._mean is None or self.count < 2:
            raise NotFittedError(
                f"the IBA statistics{f' of layer {self.layer!r}' if self.layer else ''} are not "
                f"fitted (seen {self.count} feature maps, need at least 2; the reference uses 10,000): "
                "call .fit(model, images) or load saved statistics with UnitStatistics.load(path)"
            )

    def mean(self) -> torch.Tensor:
        """Per-unit mean ``(C, h, w)``, float32."""
        self._require()
        assert self._mean is not None
        return self._mean.float()

    def std(self, min_std: float = 0.0) -> torch.Tensor:
        """Per-unit sample standard deviation ``(C, h, w)``, floored at ``min_std``."""
        self._require()
        assert self._m2 is not None
        return torch.sqrt(self._m2 / (self.count - 1)).clamp_min(min_std).float()

    def active(self, threshold: float = 0.01) -> torch.Tensor:
        """Bool mask ``(C, h, w)``: units non-zero in more than ``threshold`` of the feature maps."""
        self._require()
        assert self._nonzero is not None
        return (self._nonzero.double() / self.count) > threshold

    # -- checks ---------------------------------------------------------------------------------
    def check_model(self, model: nn.Module, layer: str) -> None:
        """Raise :class:`StatisticsMismatchError` if fitted for another layer or other weights."""
        self._require()
        if self.layer is not None and self.layer != layer:
            raise StatisticsMismatchError(
                f"these statistics were fitted at layer {self.layer!r}, not {layer!r}"
            )
        if self.fingerprint is not None and self.fingerprint != model_fingerprint(model):
            raise StatisticsMismatchError(
                "these statistics were fitted for a model with other weights (fingerprint "
                "mismatch); fit them again for this model"
            )

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        model: nn.Module,
        layer: str,
        images: torch.Tensor | Iterable[Any],
        n_samples: int = 10_000,
        batch_size: int = 32,
        progress: bool = True,
    ) -> UnitStatistics:
        """Statistics of ``layer`` over ``images`` (a tensor ``(N, 1, H, W)`` or an iterable of batches)."""
        return fit_statistics(model, [layer], images, n_samples, batch_size, progress)[0]

    # -- storage --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        self._require()
        return {
            "format": _FORMAT,
            "layer": self.layer or "",
            "count": self.count,
            "fingerprint": self.fingerprint or "",
            "mean": self._mean.cpu(),  # type: ignore[union-attr]
            "m2": self._m2.cpu(),  # type: ignore[union-attr]
            "nonzero": self._nonzero.cpu(),  # type: ignore[union-attr]
        }

    def save(self, path: str | Path) -> Path:
        """Write the statistics (a few MB for a DenseNet layer) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state(), path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> UnitStatistics:
        """Read statistics written by :meth:`save` (``torch.load(weights_only=True)``)."""
        path = Path(path)
        if not path.is_file():
            raise DataUnavailableError(f"no IBA statistics at {path}; fit them with UnitStatistics.fit")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state.get("format") != _FORMAT:
                raise CorruptFileError(f"unknown format {state.get('format')!r}, expected {_FORMAT}")
            stats = cls(state["layer"] or None)
            stats.count = int(state["count"])
            stats.fingerprint = state["fingerprint"] or None
            stats._mean, stats._m2, stats._nonzero = state["mean"], state["m2"], state["nonzero"]
        except Exception as err:  # unpickling errors, missing keys, wrong types
            raise CorruptFileError(f"{path} is not a chexp IBA statistics file ({err})") from None
        return stats

    def __repr__(self) -> str:
        shape = self.shape if self._mean is not None else None
        return f"UnitStatistics(layer={self.layer!r}, count={self.count}, shape={shape})"


def fit_statistics(
    model: nn.Module,
    layers: Sequence[str],
    images: torch.Tensor | Iterable[Any],
    n_samples: int = 10_000,
    batch_size: int = 32,
    progress: bool = True,
) -> list[UnitStatistics]:
    """Fit statistics for several layers in one pass over ``images`` (at most ``n_samples``).

    The forward pass stops after the deepest requested layer. Images are validated with the
    model's ``check_input`` when it has one.
    """
    resolved = dict(resolve_layer(model, name) for name in layers)
    stats = {name: UnitStatistics(name) for name in resolved}
    device = next(iter(model.parameters()), torch.empty(0)).device
    check = getattr(model, "check_input", None)
    store: dict[str, torch.Tensor] = {}
    bar = tqdm(total=n_samples, desc="IBA statistics", disable=not progress, leave=False)
    with torch.no_grad(), eval_mode(model, freeze=True), capture_outputs(resolved, store) as run:
        for batch in _batches(images, batch_size):
            seen = next(iter(stats.values())).count
            if seen >= n_samples:
                break
            batch = batch[: n_samples - seen].to(device)
            if check is not None:
                check(batch)
            run(partial(model, batch))
            for name, feats in store.items():
                stats[name].update(feats)
            bar.update(batch.shape[0])
    bar.close()
    fingerprint = model_fingerprint(model)
    for s in stats.values():
        s._require()
        s.fingerprint = fingerprint
        if s.count < 1000:
            warnings.warn(
                f"IBA statistics of {s.layer!r} fitted on only {s.count} images (the reference "
                "recommends 10,000)",
                stacklevel=2,
            )
    return list(stats.values())
