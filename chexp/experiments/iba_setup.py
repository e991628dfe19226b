"""The CheXplain-IBA setup shared by every figure and table (Khakzar et al., MICCAI 2021).

A :class:`Setup` bundles what every experiment needs: a classifier on a device, the IBA
bottleneck layer(s) and their per-unit statistics, fitted once on *training-stream* images and
cached beside the model file (:func:`fitted_statistics`). Methods are named as in the paper's
tables, the display names of :data:`chexp.methods.METHODS` (``"Gradients"``, ``"IBA"``,
``"Inverse IBA"`` ...); :meth:`Setup.method` builds one, :meth:`Setup.explain` returns one map
per method.

Conventions. Maps are used as the methods return them (higher = more important): input
gradients are absolute values; integrated gradients and LRP are signed (negative evidence ranks
last); IBA maps are bits per pixel. Multi-layer IBA uses the released code's combination
(``combine="masked"``: the shallowest map, kept where every deeper map passes its threshold) so
that its map can be ranked pixel by pixel; the paper's 0/1 intersection (Eq. 7) is
``combine="intersection"``. Its maps are normalised by their maximum and thresholded at 0.1 unless
the options say otherwise (``normalize="l2"`` with ``thresholds=0.006 * 224 / side`` is the
released rule, see :func:`chexp.iba.methods.normalize_l2`).

The IBA loss. chexp explains a class with :class:`~chexp.iba.TargetBCE` (the target's BCE
alone); the released code uses :class:`~chexp.iba.OneHotBCE` (BCE against a one-hot vector,
averaged over all C classes), whose target term weighs 1/C as much, so β = 10 here is about
β = 10 / C there (0.7 for the 14 NIH classes). ``iba_settings={"loss": "onehot"}`` (a name of
:data:`chexp.iba.LOSSES`) selects the released loss for every IBA-family method.

Profiles. :func:`chexplain_profile` gives the profile as these notebooks use it (``paper``: XRV-all
on the NIH box images of Table 1, :class:`~chexp.profiles.paper.CheXplainPaperProfile`);
:func:`brixia_stand_in` the profile whose models stand in where the paper trained its own
(``paper`` -> ``cohen``); :func:`for_profile` reads a ``{profile: value}`` notebook parameter.

The figures and tables, one module each: :mod:`~chexp.experiments.inverse` (Fig. 1),
:mod:`~chexp.experiments.perturbation` (Fig. 2), :mod:`~chexp.experiments.regression` (Fig. 3),
:mod:`~chexp.experiments.iou` (Tables 1-2), :mod:`~chexp.experiments.weighted_bce` (Table 3),
:mod:`~chexp.experiments.multilayer` (Fig. 4).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..attribution import Attribution
from ..errors import ChexpError, UnknownNameError
from ..iba import BOTTLENECK_LAYERS, UnitStatistics, bottleneck_layers, fit_statistics, statistics_path
from ..iba.estimator import StatisticsMismatchError
from ..methods import LayerNeed, get_method_spec, get_method_specs
from ..models.base import Classifier
from ..models.modules import resolve_layer
from ..paths import models_dir
from ..profiles import Profile, get_profile, profile_class
from ..profiles.base import default_train_device
from ..profiles.paper import CheXplainPaperProfile
from ..progress import tqdm

__all__ = [
    "DEFAULT_LAYER",
    "DEFAULT_LAYERS",
    "DEFAULT_STATISTICS_IMAGES",
    "CHEXPLAIN_PROFILES",
    "PAPER_METHODS",
    "STAND_INS",
    "Setup",
    "brixia_stand_in",
    "chexplain_profile",
    "fitted_statistics",
    "for_profile",
    "make_setup",
    "model_directory",
    "stand_in_note",
    "training_images",
]

#: The methods of the paper's Fig. 2 and Table 1, in its column order.
PAPER_METHODS: tuple[str, ...] = (
    "Grad-CAM", "Integrated gradients", "LRP", "Gradients", "IBA", "Inverse IBA", "Multi-layer IBA",
)

#: Bottleneck layer of IBA / Inverse IBA for chexp's small CNNs (:data:`chexp.iba.BOTTLENECK_LAYERS`).
DEFAULT_LAYER = BOTTLENECK_LAYERS["small-cnn"].layer
#: Multi-layer IBA layers for chexp's small CNNs (:data:`chexp.iba.BOTTLENECK_LAYERS`).
DEFAULT_LAYERS: tuple[str, ...] = BOTTLENECK_LAYERS["small-cnn"].layers

#: Images used to fit the IBA statistics when a notebook does not say (the reference uses
#: 10,000; a few hundred suffice for chexp's small models and keep the fit to seconds).
DEFAULT_STATISTICS_IMAGES = 400


# --------------------------------------------------------------------------------------------
# profiles and their defaults
# --------------------------------------------------------------------------------------------
#: profile name -> the class CheXplain-IBA's notebooks use for it (the others: the registered one)
CHEXPLAIN_PROFILES: dict[str, type[Profile]] = {"paper": CheXplainPaperProfile}


def chexplain_profile(name: str, train_device: str | None = None) -> Profile:
    """The profile ``name`` as CheXplain-IBA's notebooks use it: ``"paper"`` is
    :class:`~chexp.profiles.paper.CheXplainPaperProfile` (XRV-all on the NIH box images of Table 1,
    IBA statistics from NIH training images), the others are :func:`~chexp.profiles.get_profile`'s.

    Raises:
        UnknownNameError: ``name`` is no profile (the message lists them).
    """
    profile = CHEXPLAIN_PROFILES.get(name, profile_class(name))()
    profile.train_device = train_device or default_train_device()
    return profile


#: profile name -> the profile whose BrixIA data and chexp-trained models stand in for it where
#: CheXplain-IBA trained its own model (the BrixIA severity regressor of Fig. 3 and section 3.2,
#: the BCE / weighted-BCE pair of Table 3): torchxrayvision publishes neither, the BrixIA
#: images need a data agreement, so the ``paper`` profile uses the ``cohen`` profile's.
STAND_INS: dict[str, str] = {"paper": "cohen"}


def brixia_stand_in(profile: Profile) -> Profile:
    """``profile``, or the profile standing in for it (:data:`STAND_INS`, same training device)."""
    if profile.name not in STAND_INS:
        return profile
    return get_profile(STAND_INS[profile.name], train_device=profile.train_device)


def stand_in_note(profile: Profile, used: Profile, trained_by_paper: str) -> str:
    """A paragraph for a page that runs on ``used`` instead of ``profile`` (:func:`brixia_stand_in`;
    empty when they are the same profile). ``trained_by_paper``: a sentence on the model the paper
    trained itself and why it is not available (e.g. :data:`chexp.experiments.regression.TRAINED_BY_PAPER`)."""
    if used is profile:
        return ""
    return (
        f"**Stand-in under the {profile.name} profile.** {trained_by_paper} This page therefore runs on the "
        f"**{used.name}** profile's models and images: those chexp trains on the Cohen COVID-19 radiographs "
        "that carry BrixIA scores (the paper's losses and heads, a small CNN instead of DenseNet121, far fewer "
        "images). Its numbers describe that stand-in, not the paper's models (see the book's *differences* page)."
    )


def for_profile(value: Any, profile: Profile) -> Any:
    """A notebook parameter that may depend on the profile: ``value[profile.name]`` when ``value``
    is a mapping (profile name -> value, e.g. the paper's sample size under ``paper``), else
    ``value`` itself (``-p n_samples=1`` sets it for every profile).

    Raises:
        UnknownNameError: ``value`` is a mapping without an entry for the profile.
    """
    if not isinstance(value, Mapping):
        return value
    if profile.name not in value:
        raise UnknownNameError(profile.name, value, "profile of this parameter")
    return value[profile.name]


# --------------------------------------------------------------------------------------------
# statistics, cached beside the model
# --------------------------------------------------------------------------------------------
def model_directory(model: torch.nn.Module) -> Path | None:
    """The cache folder a model trained by chexp was loaded from (matched by its weights' sha256).

    Returns ``None`` for a model without a card (e.g. a pretrained torchxrayvision model).
    """
    card = getattr(model, "card", None)
    if card is None or not getattr(card, "weights_sha256", ""):
        return None
    import json

    for path in sorted(models_dir().glob(f"{card.name}-*/card.json")):
        try:
            if json.loads(path.read_text()).get("weights_sha256") == card.weights_sha256:
                return path.parent
        except (OSError, ValueError):
            continue
    return None


def _statistics_location(model: torch.nn.Module, layer: str) -> Path:
    directory = model_directory(model)
    if directory is None:  # not a chexp-trained model: key the file by the weights' fingerprint
        from ..iba.estimator import model_fingerprint

        directory = models_dir() / "iba-statistics" / model_fingerprint(model)[:16]
        directory.mkdir(parents=True, exist_ok=True)
    return statistics_path(directory, layer)


def fitted_statistics(
    model: Classifier,
    layers: Sequence[str],
    images: Callable[[int], torch.Tensor],
    n_images: int = DEFAULT_STATISTICS_IMAGES,
    refit: bool = False,
    progress: bool = False,
) -> dict[str, UnitStatistics]:
    """Per-unit statistics of ``layers``, loaded from beside the model or fitted and saved there.

    Args:
        model: the model (a chexp-trained model's statistics go into its cache folder as
            ``iba-<layer>.pt``; others under ``models/iba-statistics/<fingerprint>/``).
        layers: full layer names.
        images: ``n -> (n, 1, H, W)`` training images (called only when a fit is needed).
        n_images: images to fit on. A cached file fitted on fewer images is refitted.
        refit: ignore cached files.

    Returns:
        layer name -> :class:`~chexp.iba.UnitStatistics` (on CPU).
    """
    out: dict[str, UnitStatistics] = {}
    missing: list[str] = []
    for layer in layers:
        path = _statistics_location(model, layer)
        if path.is_file() and not refit:
            try:
                stats = UnitStatistics.load(path)
                stats.check_model(model, layer)
                if stats.count >= n_images:
                    out[layer] = stats
                    continue
            except (StatisticsMismatchError, ChexpError):
                pass
        missing.append(layer)
    if missing:
        x = images(n_images)
        device = next(model.parameters()).device
        with warnings.catch_warnings():  # the "fewer than 1000 images" note: the page states the count
            warnings.filterwarnings("ignore", message="IBA statistics of .* fitted on only")
            fitted = fit_statistics(model, missing, x.to(device), n_images, 64, progress)
        for layer, stats in zip(missing, fitted, strict=True):
            stats.save(_statistics_location(model, layer))
            out[layer] = stats
    return {layer: out[layer] for layer in layers}


def training_images(profile: Profile) -> Callable[[int], torch.Tensor]:
    """``n -> (n, 1, H, W)`` images from the training data of ``profile``'s models
    (:meth:`~chexp.profiles.Profile.training_images`)."""
    return profile.training_images


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------
#: :class:`Setup` option -> (method slug, keyword of the method's class) it sets.
SETUP_OPTIONS: dict[str, tuple[str, str]] = {
    "gradcam_layer": ("gradcam", "layer"),
    "ig_steps": ("integrated", "n_steps"),
    "ig_batch": ("integrated", "internal_batch_size"),
    "inverse_beta": ("inverse-iba", "beta"),
    "thresholds": ("multilayer-iba", "thresholds"),
    "normalize": ("multilayer-iba", "normalize"),
    "combine": ("multilayer-iba", "combine"),
}

#: The CheXplain-IBA settings that differ from the classes' defaults, by method slug.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "integrated": {"internal_batch_size": 50},
    "multilayer-iba": {"combine": "masked"},
}

#: Options that set the IBA family's settings (:attr:`Setup.iba_settings` keys); ``loss`` is a name
#: of :data:`chexp.iba.LOSSES` (``"target"``, ``"onehot"``, ...) or a loss class.
_IBA_KEYS = {
    "beta", "steps", "lr", "samples", "initial_alpha", "sigma", "seed", "batch_size", "progress", "loss",
    "final_mask",
}


@dataclass
class Setup:
    """A classifier with its IBA layers and statistics, ready to explain.

    Attributes:
        classifier: model with ``output="probability"`` (or ``"score"``), on ``device``.
        layer: the IBA / Inverse IBA bottleneck layer.
        layers: the Multi-layer IBA layers (shallowest first).
        statistics: layer -> fitted statistics (every layer of ``layer`` and ``layers``).
        device: torch device of the model.
        iba_settings: keyword arguments for every IBA-family method (beta, steps, loss, ...).
        options: per-method options (``ig_steps``, ``inverse_beta``, ``thresholds``,
            ``normalize``, ...).
    """

    classifier: Classifier
    layer: str
    layers: tuple[str, ...]
    statistics: dict[str, UnitStatistics]
    device: torch.device
    iba_settings: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def method(self, name: str, **options: Any) -> Attribution:
        """The method called ``name`` (display name or slug of :data:`chexp.methods.METHODS`),
        configured by :data:`METHOD_DEFAULTS`, the setup's layers, statistics and IBA settings,
        and ``options`` (over :attr:`options`; keys of :data:`SETUP_OPTIONS` or IBA settings)."""
        spec = get_method_spec(name)
        options = {**self.options, **options}
        iba = {**self.iba_settings, **{k: v for k, v in options.items() if k in _IBA_KEYS}}
        kwargs = {
            **METHOD_DEFAULTS.get(spec.slug, {}),
            **self._layer_arguments(spec.layer, iba),
            **{kw: options[opt] for opt, (slug, kw) in SETUP_OPTIONS.items() if slug == spec.slug and opt in options},
        }
        return spec.build(self.classifier, **kwargs)

    def _layer_arguments(self, need: LayerNeed, iba: dict[str, Any]) -> dict[str, Any]:
        """Layer(s), statistics and IBA settings for a method that needs bottlenecks (else none)."""
        bottlenecks = {
            "bottleneck": {"layer": self.layer, "statistics": self.statistics[self.layer]},
            "bottlenecks": {"layers": self.layers, "statistics": {n: self.statistics[n] for n in self.layers}},
        }
        return {**bottlenecks[need], **iba} if need in bottlenecks else {}

    def explain(
        self, images: torch.Tensor, target: Any, methods: Sequence[str] = PAPER_METHODS, progress: bool = False
    ) -> dict[str, torch.Tensor]:
        """Maps ``(B, 1, H, W)`` (on CPU) of every method for ``images`` and one ``target``."""
        get_method_specs(methods)
        x = images.to(self.device)
        out: dict[str, torch.Tensor] = {}
        for name in tqdm(methods, desc="methods", disable=not progress, leave=False):
            out[name] = self.method(name).attribute(x, target).detach().float().cpu()
        return out

    def describe(self) -> str:
        counts = {layer: s.count for layer, s in self.statistics.items()}
        loss = self.iba_settings.get("loss", "target")
        loss_note = (
            "loss `onehot` (the released code's BCE against a one-hot target over all classes)"
            if loss == "onehot"
            else f"loss `{getattr(loss, '__name__', loss)}` (the released code uses `onehot`, BCE against a "
            "one-hot target over all C classes, where the same β weighs about C times more)"
        )
        return (
            f"IBA layer `{self.layer}`, Multi-layer IBA layers {', '.join(f'`{name}`' for name in self.layers)}; "
            f"per-unit statistics fitted on {min(counts.values())} training images "
            f"(the reference uses 10,000); settings {self.iba_settings or 'reference defaults'}; {loss_note}."
        )


def make_setup(
    profile: Profile,
    classifier: Classifier | None = None,
    device: str | torch.device = "cpu",
    layer: str | None = None,
    layers: Sequence[str] | None = None,
    n_statistics: int = DEFAULT_STATISTICS_IMAGES,
    images: Callable[[int], torch.Tensor] | None = None,
    iba_settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> Setup:
    """Build a :class:`Setup` for ``profile`` (its classifier unless ``classifier`` is given).

    ``layer`` / ``layers``: the IBA layer and the Multi-layer IBA layers; ``None``: those of the
    model's family (:func:`chexp.iba.bottleneck_layers`: DenseNet121 dense block 3 and blocks
    1-3, as the paper; chexp's CNNs ``features.block3`` and blocks 1-3). Layer names are
    checked before the statistics are loaded or fitted.
    """
    model = (classifier if classifier is not None else profile.classifier("probability")).to(device).eval()
    if layer is None or layers is None:
        family = bottleneck_layers(model)
        layer = family.layer if layer is None else layer
        layers = family.layers if layers is None else layers
    layer_name = resolve_layer(model, layer)[0]
    layer_names = tuple(resolve_layer(model, name)[0] for name in layers)
    wanted = list(dict.fromkeys([layer_name, *layer_names]))
    stats = fitted_statistics(model, wanted, images or training_images(profile), n_statistics)
    return Setup(model, layer_name, layer_names, stats, torch.device(device), dict(iba_settings or {}), dict(options))
