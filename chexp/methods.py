"""Every attribution method of chexp, by name: one registry for both papers, the notebooks and
the command line.

Each entry (:class:`MethodSpec`) has a slug (the name in the Gifsplanation tables, e.g.
``"grad"``, ``"latentshift-max"``), a display name (the name in the CheXplain-IBA tables, e.g.
``"Gradients"``, ``"Inverse IBA"``), its :class:`~chexp.attribution.Attribution` class and what
it needs besides the classifier. Either name finds it; :func:`build_method` returns a configured
method::

    from chexp.methods import build_method
    maps = build_method("grad", classifier).attribute(images, target="Cardiomegaly")
    maps = build_method("latentshift-max", classifier, autoencoder).attribute(images, "Cardiomegaly")
    maps = build_method("IBA", classifier, statistics=stats).attribute(images, "Cardiomegaly")

==========================  =============================  =====================  ===========================
slug                        display name                   class                  needs
==========================  =============================  =====================  ===========================
grad                        Gradients                      InputGradient
gradxinput                  Gradient × input               GradientTimesInput
guided                      Guided backprop                GuidedBackprop
integrated                  Integrated gradients           IntegratedGradients
gradcam                     Grad-CAM                       GradCAM                a spatial layer (default:
                                                                                  the last one)
lrp                         LRP                            LRP
iterativedelete             Iterative delete               IterativeDelete
latentshift-max             Latent Shift (max)             LatentShift            an autoencoder
latentshift-mean            Latent Shift (mean)            LatentShift            an autoencoder
latentshift-minmax          Latent Shift (minmax)          LatentShift            an autoencoder
latentshift-sliding         Latent Shift (sliding)         LatentShift            an autoencoder
latentshift-counterfactual  Latent Shift (counterfactual)  LatentShift            an autoencoder
iba                         IBA                            IBA                    a bottleneck layer and its
                                                                                  statistics
inverse-iba                 Inverse IBA                    InverseIBA             a bottleneck layer and its
                                                                                  statistics
regression-iba              Regression IBA                 RegressionIBA          a bottleneck layer and its
                                                                                  statistics
multilayer-iba              Multi-layer IBA                MultiLayerIBA          bottleneck layers and their
                                                                                  statistics
==========================  =============================  =====================  ===========================

``latentshift-counterfactual`` is the single frame ``|D(z) - D(z + lambda_lower dz)|``: what the
released gifsplanation code computed for "latentshift-max" (it indexed one frame), hence what the
paper's Table 1 reports under that name; ``latentshift-max`` is Appendix B's per-pixel max over
all frames.

The bottleneck layers of each model family are listed in
:data:`chexp.iba.BOTTLENECK_LAYERS` (used when no layer is given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .attribution import Attribution
from .baselines import (
    LRP,
    GradCAM,
    GradientTimesInput,
    GuidedBackprop,
    InputGradient,
    IntegratedGradients,
    IterativeDelete,
)
from .errors import InvalidParameterError, UnknownMethodError
from .iba import IBA, InverseIBA, MultiLayerIBA, RegressionIBA
from .latentshift import MAP_METHODS, LatentShift
from .models.base import Autoencoder, Classifier

__all__ = ["METHODS", "LayerNeed", "MethodSpec", "build_method", "get_method_spec", "get_method_specs"]

#: What layer a method needs: ``"spatial"`` (Grad-CAM: a layer with a spatial output, by default
#: the last one), ``"bottleneck"`` (IBA, Inverse IBA, Regression IBA: one layer and its fitted
#: ``statistics``), ``"bottlenecks"`` (Multi-layer IBA: ``layers`` and their ``statistics``), or
#: ``None``.
LayerNeed = Literal["spatial", "bottleneck", "bottlenecks"] | None


@dataclass(frozen=True)
class MethodSpec:
    """One registered attribution method.

    Attributes:
        slug: short name (Gifsplanation tables and CSV files, settings keys).
        display: display name (CheXplain-IBA tables and CSV files, figure titles).
        cls: the :class:`~chexp.attribution.Attribution` class.
        needs_autoencoder: built as ``cls(model, autoencoder, ...)`` (Latent Shift).
        layer: the layer it needs (:data:`LayerNeed`); given as the ``layer`` / ``layers``
            and ``statistics`` options.
        settings: constructor keywords fixed by this entry (e.g. Latent Shift's ``map_method``).
    """

    slug: str
    display: str
    cls: type[Attribution]
    needs_autoencoder: bool = False
    layer: LayerNeed = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def build(self, model: Classifier, autoencoder: Autoencoder | None = None, **options: Any) -> Attribution:
        """The method for ``model``, configured with :attr:`settings` and ``options`` (the class's
        keyword arguments). ``autoencoder`` is used only when :attr:`needs_autoencoder`.

        Raises:
            InvalidParameterError: the method needs an autoencoder and none is given.
        """
        kwargs = {**self.settings, **options}
        if not self.needs_autoencoder:
            return self.cls(model, **kwargs)
        if autoencoder is None:
            raise InvalidParameterError(f"autoencoder: the method {self.slug!r} needs an autoencoder, got None")
        return self.cls(model, autoencoder, **kwargs)  # type: ignore[call-arg]


_SPECS: tuple[MethodSpec, ...] = (
    MethodSpec("grad", "Gradients", InputGradient),
    MethodSpec("gradxinput", "Gradient × input", GradientTimesInput),
    MethodSpec("guided", "Guided backprop", GuidedBackprop),
    MethodSpec("integrated", "Integrated gradients", IntegratedGradients),
    MethodSpec("gradcam", "Grad-CAM", GradCAM, layer="spatial"),
    MethodSpec("lrp", "LRP", LRP),
    MethodSpec("iterativedelete", "Iterative delete", IterativeDelete),
    *(
        MethodSpec(f"latentshift-{name}", f"Latent Shift ({name})", LatentShift, needs_autoencoder=True,
                   settings={"map_method": name})
        for name in MAP_METHODS
    ),
    MethodSpec("iba", "IBA", IBA, layer="bottleneck"),
    MethodSpec("inverse-iba", "Inverse IBA", InverseIBA, layer="bottleneck"),
    MethodSpec("regression-iba", "Regression IBA", RegressionIBA, layer="bottleneck"),
    MethodSpec("multilayer-iba", "Multi-layer IBA", MultiLayerIBA, layer="bottlenecks"),
)

#: Slug -> method, in the order of the table above.
METHODS: dict[str, MethodSpec] = {spec.slug: spec for spec in _SPECS}
_BY_NAME: dict[str, MethodSpec] = {**METHODS, **{spec.display: spec for spec in _SPECS}}


def get_method_spec(name: str) -> MethodSpec:
    """The method called ``name`` (slug or display name).

    Raises:
        UnknownMethodError: an unknown name (the message lists the known ones).
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownMethodError(name, _BY_NAME) from None


def get_method_specs(names: Sequence[str]) -> list[MethodSpec]:
    """:func:`get_method_spec` of every name: checks a whole list before any work starts."""
    return [get_method_spec(name) for name in names]


def build_method(
    name: str, model: Classifier, autoencoder: Autoencoder | None = None, **options: Any
) -> Attribution:
    """The method called ``name`` (slug or display name) for ``model``.

    Args:
        name: a slug or display name of :data:`METHODS`.
        model: the classifier to explain.
        autoencoder: for Latent Shift (ignored by the other methods).
        **options: keyword arguments of the method's class (e.g. ``n_steps`` for integrated
            gradients, ``layer`` and ``statistics`` for IBA, ``search`` for Latent Shift).

    Returns:
        the configured :class:`~chexp.attribution.Attribution`;
        ``.attribute(images, target)`` gives maps ``(B, 1, H, W)``.

    Raises:
        UnknownMethodError: an unknown name.
        InvalidParameterError: Latent Shift without an autoencoder.
    """
    return get_method_spec(name).build(model, autoencoder, **options)
