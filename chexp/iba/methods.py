"""The IBA family: IBA, Inverse IBA, Regression IBA and Multi-layer IBA.

Every method is an :class:`~chexp.attribution.Attribution` with the call shape of the other
methods of chexp::

    iba = IBA(model, layer="features.denseblock3")
    iba.fit(train_images)                       # or statistics=UnitStatistics.load(path)
    maps = iba.attribute(images, target="Cardiomegaly")   # (B, 1, H, W), bits per pixel

``target`` is any target of :mod:`chexp.targets` (``None``, a name, an index, one per image, a
:class:`~chexp.targets.RegressionTarget`), turned into a loss by
:func:`~chexp.iba.losses.as_loss`, or a loss object of :mod:`chexp.iba.losses`. Several images
are explained at once (``batch_size`` per optimisation), the network in front of the bottleneck
is computed once per image (not once per step), the model's parameters get no gradients, and
every image's noise comes from its own generator seeded with ``seed``: with the default
``pass_per_image=True`` a map does not depend on the other images of the batch and equals the
reference algorithm's (:func:`~chexp.iba.reference.reference_attribute`) up to float rounding
(the tests hold them within 1e-4 of the map's range).

Defaults are the reference ones (Schulz et al. 2020; CheXplain-IBA): beta 10, 10 Adam steps at
lr 1, 10 noise samples per step, initial alpha 5, smoothing sigma 1, std floor 0.01, units active
in at most 1% of the data masked out. The map is the reference's: the information of the last
forward pass of the optimisation, i.e. of the mask after ``steps - 1`` Adam updates
(``final_mask=True``: of the mask after the last update). The loss is chexp's
:class:`~chexp.iba.losses.TargetBCE` unless ``loss`` says otherwise (``loss="onehot"``: the
released CheXplain-IBA loss, see :data:`~chexp.iba.losses.LOSSES`). The bottleneck layers of
each model family are listed once, in :data:`BOTTLENECK_LAYERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from ..attribution import Attribution
from ..errors import (
    InvalidParameterError,
    LossMismatchError,
    NotFittedError,
    StatisticsMismatchError,
    UnknownLayerError,
    UnknownNameError,
)
from ..models.base import Classifier
from ..models.modules import layer_names, resolve_layer
from ..progress import tqdm
from ..targets import Target, TargetLike
from .bottleneck import BLOCK, KEEP, BottleneckConfig, BottleneckResult, Flow, optimize_bottleneck
from .estimator import UnitStatistics, fit_statistics
from .losses import LOSSES, LossFactory, ModelLoss, RegressionDeviation, TargetBCE, _RegressionLoss, as_loss


@dataclass(frozen=True)
class BottleneckLayers:
    """Where the IBA family puts its bottlenecks in one model family.

    Attributes:
        layer: the layer of IBA, Inverse IBA and Regression IBA.
        layers: the layers of Multi-layer IBA, shallowest first.
    """

    layer: str
    layers: tuple[str, ...]


#: Model family -> bottleneck layers. DenseNet121 (torchxrayvision): after dense block 3, the
#: paper's choice (14 x 14 at 224 px), and after blocks 1, 2, 3 for Multi-layer IBA. chexp's small
#: CNNs (:class:`~chexp.models.small.SmallClassifier`): ``features.block3`` has 1/16 of the input
#: resolution (8 x 8 at 128 px) as dense block 3 has; blocks 1, 2, 3 for Multi-layer IBA.
BOTTLENECK_LAYERS: dict[str, BottleneckLayers] = {
    "densenet121": BottleneckLayers(
        "features.denseblock3", ("features.denseblock1", "features.denseblock2", "features.denseblock3")
    ),
    "small-cnn": BottleneckLayers("features.block3", ("features.block1", "features.block2", "features.block3")),
}


def _has_layer(model: Classifier, name: str) -> bool:
    try:
        resolve_layer(model, name)
    except UnknownLayerError:
        return False
    return True


def bottleneck_layers(model: Classifier) -> BottleneckLayers:
    """The :data:`BOTTLENECK_LAYERS` of ``model``'s family: the first family whose layers the
    model has. :class:`~chexp.errors.UnknownLayerError` (listing the model's layers) if none."""
    for family in BOTTLENECK_LAYERS.values():
        if all(_has_layer(model, name) for name in family.layers):
            return family
    raise UnknownLayerError(
        f"<IBA default for {type(model).__name__}: none of {', '.join(BOTTLENECK_LAYERS)}; pass layer=>",
        layer_names(model),
    )


class _BottleneckMethod(Attribution):
    """Shared machinery: a model, one bottleneck layer, its statistics and the settings."""

    flow: Flow = KEEP
    #: the loss a target (other than a RegressionTarget or a loss object) is explained with when
    #: ``loss`` is not given
    default_loss: Callable[[Target], ModelLoss] = TargetBCE

    def __init__(
        self,
        model: Classifier,
        layer: str | None = None,
        statistics: UnitStatistics | None = None,
        *,
        beta: float = 10.0,
        steps: int = 10,
        lr: float = 1.0,
        samples: int = 10,
        initial_alpha: float = 5.0,
        sigma: float | None = 1.0,
        min_std: float = 0.01,
        active_threshold: float = 0.01,
        seed: int = 0,
        pass_per_image: bool = True,
        final_mask: bool = False,
        loss: str | LossFactory | None = None,
        batch_size: int = 8,
        progress: bool = False,
    ) -> None:
        super().__init__(model)
        self.loss_factory: LossFactory = self.default_loss if loss is None else _lookup(loss, LOSSES, "IBA loss")
        self.layer_name, self.layer = resolve_layer(model, layer or bottleneck_layers(model).layer)
        self.config = BottleneckConfig(
            beta=beta, steps=steps, lr=lr, samples=samples, initial_alpha=initial_alpha,
            sigma=sigma, min_std=min_std, active_threshold=active_threshold, seed=seed,
            pass_per_image=pass_per_image, final_mask=final_mask,
        )
        if batch_size < 1:
            raise InvalidParameterError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.batch_size = batch_size
        self.progress = progress
        self.statistics = statistics
        if statistics is not None:
            statistics.check_model(model, self.layer_name)
        #: diagnostics of the last :meth:`attribute` call, one per optimised chunk of images
        self.last_results: list[BottleneckResult] = []

    def fit(
        self, images: torch.Tensor | Iterable[Any], n_samples: int = 10_000, batch_size: int = 32
    ) -> _BottleneckMethod:
        """Estimate the per-unit statistics at the layer over ``images``; returns ``self``."""
        self.statistics = fit_statistics(
            self.model, [self.layer_name], images, n_samples, batch_size, self.progress
        )[0]
        return self

    def _loss(self, target: TargetLike | ModelLoss) -> ModelLoss:
        return as_loss(target, self.loss_factory)

    def _prepare(self, inputs: torch.Tensor, target: TargetLike | ModelLoss) -> tuple[torch.Tensor, ModelLoss]:
        self.model.check_input(inputs)
        if self.statistics is None:
            raise NotFittedError(
                f"{type(self).__name__} at {self.layer_name!r} has no statistics: call "
                ".fit(images) or pass statistics=UnitStatistics.load(path)"
            )
        self.statistics._require()
        if self.statistics.layer is not None and self.statistics.layer != self.layer_name:
            raise StatisticsMismatchError(
                f"statistics of layer {self.statistics.layer!r} given for layer {self.layer_name!r}"
            )
        loss = self._loss(target)
        loss.check(self.model, inputs.shape[0])
        return inputs, loss

    def attribute(self, inputs: torch.Tensor, target: TargetLike | ModelLoss = None) -> torch.Tensor:
        """Attribution maps for ``inputs``.

        Args:
            inputs: images ``(B, 1, H, W)`` in [-1024, 1024].
            target: a target (``None``: the model's only output; a class name or index, or one
                per image; a :class:`~chexp.targets.RegressionTarget`), or a loss object of
                :mod:`chexp.iba.losses`.

        Returns:
            Maps ``(B, 1, H, W)``, information in bits per input pixel (>= 0), on the inputs'
            device.
        """
        return super().attribute(inputs, target)  # type: ignore[arg-type]

    def _attribute(self, inputs: torch.Tensor, loss: ModelLoss) -> torch.Tensor:
        assert self.statistics is not None
        self.last_results = []
        chunks = range(0, inputs.shape[0], self.batch_size)
        maps = []
        for start in tqdm(chunks, desc=type(self).__name__, disable=not self.progress or len(chunks) < 2):
            rows = slice(start, start + self.batch_size)
            x = inputs[rows]
            part = loss.select(rows)
            part.check(self.model, x.shape[0])
            result = optimize_bottleneck(
                self.model, self.layer, x, part, self.statistics, self.config, self.flow, self.progress
            )
            self.last_results.append(result)
            maps.append(result.maps)
        return torch.cat(maps)


class IBA(_BottleneckMethod):
    """Information Bottleneck Attribution (Schulz et al. 2020): ``Z = lambda R + (1 - lambda) eps``.

    Minimises ``L_model + beta * I``: the smallest information that still explains the target
    (sufficient regions). A class target is explained with the ``loss`` factory (default
    :class:`~chexp.iba.losses.TargetBCE`), a :class:`~chexp.targets.RegressionTarget` with
    :class:`~chexp.iba.losses.RegressionDeviation`, a loss object as it is.

    Args:
        model: a :class:`~chexp.models.Classifier` (classifier or regression head).
        layer: bottleneck layer, full dotted name or a unique suffix; ``None``: the model
            family's layer in :data:`BOTTLENECK_LAYERS` (DenseNet121: ``"features.denseblock3"``,
            the paper's choice).
        statistics: fitted :class:`~chexp.iba.estimator.UnitStatistics` of that layer, or call
            :meth:`fit`.
        beta, steps, lr, samples, initial_alpha, sigma, min_std, active_threshold, seed,
            pass_per_image, final_mask: see :class:`~chexp.iba.bottleneck.BottleneckConfig`
            (``final_mask=False``, the default, gives the reference's map: the information of
            the last forward pass).
        loss: how a class target becomes a loss: a name of :data:`~chexp.iba.losses.LOSSES`
            (``"target"``: :class:`~chexp.iba.losses.TargetBCE`; ``"onehot"``: the released
            CheXplain-IBA loss :class:`~chexp.iba.losses.OneHotBCE`, whose ``beta`` weighs about
            ``C`` times more, see :mod:`chexp.iba.losses`) or a callable ``target -> loss``
            such as a loss class; ``None``: the class's default.
        batch_size: images optimised together (their front is computed in one pass; with
            ``pass_per_image=False`` also every optimisation step runs as one pass).
        progress: show progress bars.

    Maps are ``(B, 1, H, W)`` in bits per input pixel, >= 0.
    """

    flow = KEEP


class InverseIBA(_BottleneckMethod):
    """Inverse IBA (Khakzar et al. 2021, Eq. 5-6): ``Z = lambda eps + (1 - lambda) R``.

    Minimises ``-L_model + beta * I``: block (with as little noise as possible) every region that
    carries predictive information, so all such regions are marked, not only a sufficient set.
    The information term is the same KL, measured with ``lambda`` (released code). Arguments as
    :class:`IBA`; maps ``(B, 1, H, W)`` in bits per input pixel, >= 0.
    """

    flow = BLOCK


class RegressionIBA(IBA):
    """IBA for a regression head (``model.output == "score"``), Khakzar et al. 2021 section 2.2.

    Every target is explained with :class:`~chexp.iba.losses.RegressionDeviation` (``None``:
    the model's only output), or with ``loss="maximize"``
    (:class:`~chexp.iba.losses.RegressionMaximize`); pass
    :class:`~chexp.iba.losses.RegressionMSE` or :class:`~chexp.iba.losses.RegressionMaximize` as
    ``target`` for the other regression losses.
    A classification loss raises :class:`~chexp.iba.losses.LossMismatchError`. Arguments as
    :class:`IBA`; maps ``(B, 1, H, W)`` in bits per input pixel, >= 0.
    """

    default_loss = RegressionDeviation

    def _loss(self, target: TargetLike | ModelLoss) -> ModelLoss:
        if isinstance(target, ModelLoss) and not isinstance(target, _RegressionLoss):
            raise LossMismatchError(
                "RegressionIBA needs a regression loss as target: RegressionMSE(value), "
                f"RegressionMaximize() or RegressionDeviation(); got {target!r}"
            )
        return super()._loss(target)


# --- Multi-layer IBA ------------------------------------------------------------------------------


def normalize_max(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its maximum (maps are >= 0): values in [0, 1]."""
    peak = maps.amax(dim=(-2, -1), keepdim=True)
    return maps / peak.clamp_min(torch.finfo(maps.dtype).tiny)


def normalize_minmax(maps: torch.Tensor) -> torch.Tensor:
    """Each map rescaled to [0, 1] by its minimum and maximum."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    return (maps - lo) / (hi - lo).clamp_min(torch.finfo(maps.dtype).tiny)


def normalize_l2(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its Euclidean norm over the pixels (the released Multi-layer IBA code).

    A map spread evenly over ``N`` pixels has the value ``1 / sqrt(N)`` everywhere, so a fixed
    threshold depends on the resolution: the released ``0.006`` at 224 x 224 is
    ``0.006 * 224 / sqrt(H * W)`` at ``H x W`` (0.0105 at 128 x 128).
    """
    norm = maps.square().sum(dim=(-2, -1), keepdim=True).sqrt()
    return maps / norm.clamp_min(torch.finfo(maps.dtype).tiny)


NORMALIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "max": normalize_max,
    "minmax": normalize_minmax,
    "l2": normalize_l2,
}


def intersection(maps: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Paper Eq. 7: ``T(IBA_L1) & T(IBA_L2) & ...`` as a 0/1 map."""
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out.to(maps[0].dtype)


def masked_first(maps: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """The released code's variant: the first (shallowest) map, zeroed outside the deeper masks."""
    keep = masks[1]
    for m in masks[2:]:
        keep = keep & m
    return maps[0] * keep.to(maps[0].dtype) if len(masks) > 1 else maps[0]


COMBINERS: dict[str, Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], torch.Tensor]] = {
    "intersection": intersection,
    "masked": masked_first,
}


class MultiLayerIBA(Attribution):
    """Multi-layer IBA (Khakzar et al. 2021, Eq. 7): IBA at several layers, maps combined.

    Each layer gets its own bottleneck and optimisation (same loss and settings); its map is
    normalised (``normalize``, default: divided by its maximum) and thresholded at that layer's
    threshold; the thresholded maps are intersected (``combine="intersection"``, a 0/1 map) or,
    as in the released code, the shallowest map is kept where all deeper ones pass their
    threshold (``combine="masked"``). :meth:`attribute_layers` gives the single-layer maps.

    Args:
        model: a :class:`~chexp.models.Classifier`.
        layers: bottleneck layers, shallowest first; ``None``: the model family's layers in
            :data:`BOTTLENECK_LAYERS` (DenseNet121: after dense blocks 1, 2 and 3).
        statistics: one :class:`~chexp.iba.estimator.UnitStatistics` per layer (mapping by
            layer name or sequence in order), or call :meth:`fit`.
        thresholds: one per layer, applied to the normalised maps (default 0.1 each, with the
            default normaliser 0.1 of each map's maximum; the released code's rule is
            ``normalize="l2"`` with 0.006 at 224 x 224, see :func:`normalize_l2`).
        normalize: a name of :data:`NORMALIZERS` (``"max"``, ``"minmax"``, ``"l2"``) or a
            callable on ``(B, 1, H, W)`` maps.
        combine: a name of :data:`COMBINERS` or a callable ``(maps, masks) -> map``.
        method: the single-layer method to run at each layer (:class:`IBA` by default;
            :class:`InverseIBA` and :class:`RegressionIBA` work too).
        **settings: passed to ``method`` (beta, steps, samples, seed, batch_size, ...).

    Maps are ``(B, 1, H, W)``: 0/1 for ``"intersection"``, in [0, 1] for ``"masked"``.
    """

    def __init__(
        self,
        model: Classifier,
        layers: Sequence[str] | None = None,
        statistics: Mapping[str, UnitStatistics] | Sequence[UnitStatistics] | None = None,
        *,
        thresholds: Sequence[float] | float = 0.1,
        normalize: str | Callable[[torch.Tensor], torch.Tensor] = "max",
        combine: str | Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], torch.Tensor] = "intersection",
        method: type[_BottleneckMethod] = IBA,
        **settings: Any,
    ) -> None:
        super().__init__(model)
        if layers is None:
            layers = bottleneck_layers(model).layers
        if len(layers) < 1:
            raise InvalidParameterError(f"MultiLayerIBA needs at least one layer, got layers={list(layers)!r}")
        self.methods = [method(model, layer, None, **settings) for layer in layers]
        self.layer_names = [m.layer_name for m in self.methods]
        if isinstance(thresholds, (int, float)):
            thresholds = [float(thresholds)] * len(layers)
        if len(thresholds) != len(layers):
            raise InvalidParameterError(
                f"thresholds must be one number or one per layer: got {len(thresholds)} thresholds for "
                f"{len(layers)} layers ({list(thresholds)!r})"
            )
        self.thresholds = [float(t) for t in thresholds]
        self.normalize = _lookup(normalize, NORMALIZERS, "normalization")
        self.combine = _lookup(combine, COMBINERS, "combination")
        if statistics is not None:
            self._set_statistics(statistics)

    def _set_statistics(self, statistics: Mapping[str, UnitStatistics] | Sequence[UnitStatistics]) -> None:
        if isinstance(statistics, Mapping):
            statistics = {resolve_layer(self.model, k)[0]: v for k, v in statistics.items()}
            for m in self.methods:
                stats = statistics.get(m.layer_name)
                if stats is None:
                    raise StatisticsMismatchError(
                        f"statistics has no entry for layer {m.layer_name!r}; it has {sorted(statistics)}"
                    )
                stats.check_model(self.model, m.layer_name)
                m.statistics = stats
        else:
            if len(statistics) != len(self.methods):
                raise StatisticsMismatchError(
                    f"statistics must hold one UnitStatistics per layer ({len(self.methods)}), got "
                    f"{len(statistics)}"
                )
            for m, stats in zip(self.methods, statistics, strict=True):
                stats.check_model(self.model, m.layer_name)
                m.statistics = stats

    @property
    def statistics(self) -> dict[str, UnitStatistics | None]:
        return {m.layer_name: m.statistics for m in self.methods}

    def fit(self, images: torch.Tensor | Iterable[Any], n_samples: int = 10_000, batch_size: int = 32) -> MultiLayerIBA:
        """Estimate the statistics of all layers in one pass over ``images``; returns ``self``."""
        fitted = fit_statistics(self.model, self.layer_names, images, n_samples, batch_size,
                                self.methods[0].progress)
        for m, stats in zip(self.methods, fitted, strict=True):
            m.statistics = stats
        return self

    def _prepare(self, inputs: torch.Tensor, target: TargetLike | ModelLoss) -> tuple[torch.Tensor, Any]:
        for m in self.methods:  # every check before the first optimisation
            m._prepare(inputs, target)
        return inputs, target

    def attribute_layers(self, inputs: torch.Tensor, target: TargetLike | ModelLoss = None) -> dict[str, torch.Tensor]:
        """The single-layer maps ``(B, 1, H, W)`` (bits per pixel, >= 0) by full layer name,
        shallowest first; ``target`` as for :meth:`attribute`."""
        x, tgt = self._prepare(inputs, target)
        return self._layer_maps(x, tgt)

    def _layer_maps(self, inputs: torch.Tensor, target: TargetLike | ModelLoss) -> dict[str, torch.Tensor]:
        return {m.layer_name: m.attribute(inputs, target) for m in self.methods}

    def combine_maps(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Normalise, threshold and combine per-layer maps (shallowest first)."""
        normalized = [self.normalize(m) for m in maps]
        masks = [n > t for n, t in zip(normalized, self.thresholds, strict=True)]
        return self.combine(normalized, masks)

    def _attribute(self, inputs: torch.Tensor, target: TargetLike | ModelLoss) -> torch.Tensor:
        per_layer = self._layer_maps(inputs, target)
        return self.combine_maps([per_layer[n] for n in self.layer_names])


_F = TypeVar("_F", bound=Callable[..., Any])


def _lookup(value: str | _F, registry: Mapping[str, _F], what: str) -> _F:
    """``value`` if it is callable, else the registry's entry of that name."""
    if callable(value):
        return value
    try:
        return registry[value]
    except KeyError:
        raise UnknownNameError(value, registry, what) from None
