"""Experiment logic of the CheXplain-IBA chapters of the book (Khakzar et al., MICCAI 2021).

The notebooks ``20_ci_*`` ... ``26_ci_*`` call these functions and only save and show results.

A :class:`Setup` bundles what every experiment needs: a classifier on a device, the IBA
bottleneck layer(s) and their per-unit statistics, fitted once on *training-stream* images and
cached beside the model file (:func:`fitted_statistics`). Methods are named as in the paper's
tables, the display names of :data:`chexp.methods.METHODS` (``"Gradients"``, ``"IBA"``,
``"Inverse IBA"`` ...); :meth:`Setup.method` builds one, :meth:`Setup.explain` returns one map
per method.

=================================  ==============================================================
:func:`inverse_cases`              Fig. 1: cases, incl. two redundant regions (bilateral effusion)
:func:`redundancy_table`           Fig. 1: share of each region found by IBA vs Inverse IBA, and
                                   the score drop when each method's top pixels are removed
:func:`perturbation_study`         Fig. 2: insertion/deletion curves and AUC per method
:func:`iou_study`                  Tables 1-2: IoU (top-p binarisation) per task and method
:func:`weighted_bce_study`         Table 3: AUC and Inverse IBA IoU of a BCE and a weighted-BCE model
:func:`multilayer_maps`            Fig. 4: per-layer IBA maps and their Multi-layer combination
=================================  ==============================================================

Regression IBA, sensitivity-N and the severity correlation live in
:mod:`chexp.experiments.regression`.

Conventions. Maps are used as the methods return them (higher = more important): input
gradients are absolute values; integrated gradients and LRP are signed (negative evidence ranks
last); IBA maps are bits per pixel. Multi-layer IBA uses the released code's combination
(``combine="masked"``: the shallowest map, kept where every deeper map passes its threshold) so
that its map can be ranked pixel by pixel; the paper's 0/1 intersection (Eq. 7) is
``combine="intersection"``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..attribution import Attribution
from ..errors import ChexpError, DataUnavailableError, UnsupportedProfileError
from ..iba import (
    BOTTLENECK_LAYERS,
    MultiLayerIBA,
    UnitStatistics,
    fit_statistics,
    intersection,
    statistics_path,
)
from ..iba.estimator import StatisticsMismatchError
from ..methods import LayerNeed, get_method_spec, get_method_specs
from ..metrics import iou, perturbation_curves, summarize, top_k_mask
from ..metrics.classification import auc_per_task, predict
from ..metrics.perturbation import GaussianBlur, PerturbationCurves
from ..models.base import Classifier
from ..models.modules import resolve_layer
from ..paths import models_dir
from ..profiles import PhantomProfile, Profile, SampleSet
from ..progress import tqdm

__all__ = [
    "DEFAULT_LAYER",
    "DEFAULT_LAYERS",
    "PAPER_METHODS",
    "PerturbationStudy",
    "Setup",
    "UnsupportedProfileError",
    "beta_sweep",
    "case_maps",
    "fitted_statistics",
    "inverse_cases",
    "iou_study",
    "iou_summary",
    "make_setup",
    "map_iou_table",
    "model_directory",
    "multilayer_maps",
    "perturbation_study",
    "redundancy_table",
    "stack_cases",
    "summarize_iou",
    "task_samples",
    "training_images",
    "weighted_bce_models",
    "weighted_bce_study",
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
        for layer, stats in zip(missing, fitted):
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
    "combine": ("multilayer-iba", "combine"),
}

#: The CheXplain-IBA settings that differ from the classes' defaults, by method slug.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "integrated": {"internal_batch_size": 50},
    "multilayer-iba": {"combine": "masked"},
}

#: Options that set the IBA family's settings (:attr:`Setup.iba_settings` keys).
_IBA_KEYS = {"beta", "steps", "lr", "samples", "initial_alpha", "sigma", "seed", "batch_size", "progress"}


@dataclass
class Setup:
    """A classifier with its IBA layers and statistics, ready to explain.

    Attributes:
        classifier: model with ``output="probability"`` (or ``"score"``), on ``device``.
        layer: the IBA / Inverse IBA bottleneck layer.
        layers: the Multi-layer IBA layers (shallowest first).
        statistics: layer -> fitted statistics (every layer of ``layer`` and ``layers``).
        device: torch device of the model.
        iba_settings: keyword arguments for every IBA-family method (beta, steps, ...).
        options: per-method options (``ig_steps``, ``inverse_beta``, ``thresholds``, ...).
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
        return (
            f"IBA layer `{self.layer}`, Multi-layer IBA layers {', '.join(f'`{l}`' for l in self.layers)}; "
            f"per-unit statistics fitted on {min(counts.values())} training images "
            f"(the reference uses 10,000); settings {self.iba_settings or 'reference defaults'}."
        )


def make_setup(
    profile: Profile,
    classifier: Classifier | None = None,
    device: str | torch.device = "cpu",
    layer: str = DEFAULT_LAYER,
    layers: Sequence[str] = DEFAULT_LAYERS,
    n_statistics: int = DEFAULT_STATISTICS_IMAGES,
    images: Callable[[int], torch.Tensor] | None = None,
    iba_settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> Setup:
    """Build a :class:`Setup` for ``profile`` (its classifier unless ``classifier`` is given).

    Layer names are checked before the statistics are loaded or fitted.
    """
    model = (classifier if classifier is not None else profile.classifier("probability")).to(device).eval()
    layer_name = resolve_layer(model, layer)[0]
    layer_names = tuple(resolve_layer(model, name)[0] for name in layers)
    wanted = list(dict.fromkeys([layer_name, *layer_names]))
    stats = fitted_statistics(model, wanted, images or training_images(profile), n_statistics)
    return Setup(model, layer_name, layer_names, stats, torch.device(device), dict(iba_settings or {}), dict(options))


# --------------------------------------------------------------------------------------------
# samples
# --------------------------------------------------------------------------------------------
def task_samples(profile: Profile, tasks: Sequence[str], n: int, seed: int = 0) -> dict[str, SampleSet]:
    """``n`` positive images per task with ground-truth masks (tasks without masks raise)."""
    out = {}
    for task in tasks:
        s = profile.samples(n, seed=seed, task=task)
        if task not in s.masks:
            raise UnsupportedProfileError(f"profile {profile.name!r} has no ground-truth masks for {task!r}")
        out[task] = s
    return out


def _sides(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image-left and image-right halves of a mask ``(H, W)``."""
    w = mask.shape[-1]
    left = mask.copy()
    left[:, w // 2 :] = False
    return left, mask & ~left


#: profile -> (task whose positives can hold two redundant regions, default extra tasks)
REDUNDANT_TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "phantom": ("Effusion", ("Cardiomegaly",)),  # bilateral pleural effusion
    "cohen": ("zone score 3", ("zone score 2",)),  # zones scored 3 in both lungs (paper Fig. 1 right)
}


def inverse_cases(
    profile: Profile, n_redundant: int = 2, other_tasks: Sequence[str] | None = None, seed: int = 0,
    min_side_share: float = 0.25, max_draws: int = 400,
) -> list[dict[str, Any]]:
    """Cases for Fig. 1: images with *two redundant regions* and one case per ``other_tasks``.

    Phantom: bilateral pleural effusions; cohen: zones scored 3 in both lungs. A case is
    redundant when each image half holds at least ``min_side_share`` of the task's mask.

    Returns a list of dicts with ``task``, ``image (1, 1, H, W)``, ``mask (H, W)``, ``title``
    and ``redundant`` (bool).
    """
    if profile.name not in REDUNDANT_TASKS:
        raise UnsupportedProfileError(
            f"Fig. 1's redundant-region cases need masks of bilateral findings; profile {profile.name!r} "
            f"has none (supported: {', '.join(REDUNDANT_TASKS)})"
        )
    task, default_others = REDUNDANT_TASKS[profile.name]
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    draws, round_seed = 0, seed
    while len(cases) < n_redundant:
        s = profile.samples(16, seed=round_seed, task=task)
        round_seed += 1
        draws += 16
        for i in range(len(s)):
            mask = np.asarray(s.masks[task][i], bool)
            left, right = _sides(mask)
            share = min(left.sum(), right.sum()) / max(mask.sum(), 1)
            key = s.ids[i] if profile.name != "phantom" else f"{s.ids[i]}/{round_seed}"
            if share >= min_side_share and key not in seen and len(cases) < n_redundant:
                seen.add(key)
                cases.append({"task": task, "image": s.images[i : i + 1], "mask": mask, "redundant": True,
                              "title": f"{task}, both sides ({s.ids[i]})"})
        if draws >= max_draws and len(cases) < n_redundant:
            raise DataUnavailableError(
                f"only {len(cases)} of {n_redundant} images with {task!r} on both sides in {draws} draws "
                f"(min side share {min_side_share})"
            )
    for other in default_others if other_tasks is None else other_tasks:
        s = profile.samples(1, seed=seed, task=other)
        cases.append({"task": other, "image": s.images[:1], "mask": np.asarray(s.masks[other][0], bool),
                      "redundant": False, "title": f"{other} ({s.ids[0]})"})
    return cases


def case_maps(setup: Setup, cases: Sequence[Mapping[str, Any]], methods: Sequence[str] = ("IBA", "Inverse IBA")) -> list[dict[str, torch.Tensor]]:
    """Maps of ``methods`` for each case of :func:`inverse_cases` (each with its own task)."""
    return [setup.explain(case["image"], case["task"], methods) for case in cases]


def stack_cases(cases: Sequence[Mapping[str, Any]], maps: Sequence[Mapping[str, torch.Tensor]]) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[np.ndarray], list[str]]:
    """Cases and their maps as batches for plotting: ``(images, {method: maps}, masks, titles)``."""
    images = torch.cat([c["image"] for c in cases])
    stacked = {name: torch.cat([m[name] for m in maps]) for name in maps[0]} if maps else {}
    return images, stacked, [np.asarray(c["mask"]) for c in cases], [c["title"] for c in cases]


def _score(model: Classifier, images: torch.Tensor, target: str) -> torch.Tensor:
    with torch.no_grad():
        return model(images)[:, model.target_index(target)].detach().cpu()


def redundancy_table(
    setup: Setup, cases: Sequence[Mapping[str, Any]], maps: Sequence[Mapping[str, torch.Tensor]],
    methods: Sequence[str] = ("IBA", "Inverse IBA"),
) -> pd.DataFrame:
    """Fig. 1 in numbers, one row per case and method.

    Columns: ``found left`` / ``found right`` (share of each half of the mask that lies in the
    map's top-p pixels, p = mask area), ``weaker side`` (the smaller of the two: near 0 when a
    method marks one of two redundant regions only), ``IoU`` and ``score drop`` (target
    probability of the image minus that with the map's top-p pixels replaced by the blurred
    image, the paper's "remove the highlighted areas of both methods equally").
    """
    rows = []
    blur = GaussianBlur()
    for case, case_maps in zip(cases, maps):
        mask = np.asarray(case["mask"], bool)
        image = case["image"].to(setup.device)
        base = _score(setup.classifier, image, case["task"])[0].item()
        left, right = _sides(mask)
        for name in methods:
            m = case_maps[name]
            top = top_k_mask(m, int(mask.sum()))[0].numpy()
            found = [float((top & side).sum() / side.sum()) if side.any() else float("nan") for side in (left, right)]
            removed = torch.where(torch.from_numpy(top)[None, None].to(setup.device), blur(image), image)
            rows.append({
                "case": case["title"], "method": name,
                "found left": found[0], "found right": found[1],
                "weaker side": float(np.nanmin(found)) if left.any() and right.any() else float("nan"),
                "IoU": float(iou(m, torch.from_numpy(mask)[None])[0]),
                "score": base,
                "score drop": base - _score(setup.classifier, removed, case["task"])[0].item(),
            })
    return pd.DataFrame(rows)


def beta_sweep(
    setup: Setup, cases: Sequence[Mapping[str, Any]], betas: Sequence[float],
    methods: Sequence[str] = ("IBA", "Inverse IBA"),
) -> pd.DataFrame:
    """:func:`redundancy_table` for every ``beta`` (the information weight; Inverse IBA's too).

    Returns the long table with a ``beta`` column: how the share of each redundant region found
    and the score drop depend on beta (the released code uses 10, and 6 in its notebooks).
    """
    parts = []
    for beta in betas:
        for name in methods:
            method = setup.method(name, beta=float(beta), inverse_beta=float(beta))
            maps = [{name: method.attribute(c["image"].to(setup.device), c["task"]).detach().cpu()} for c in cases]
            table = redundancy_table(setup, cases, maps, (name,))
            table.insert(0, "beta", float(beta))
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Fig. 2: insertion / deletion
# --------------------------------------------------------------------------------------------
@dataclass
class PerturbationStudy:
    """Insertion and deletion curves of every method, pooled over tasks.

    Attributes:
        insertion, deletion: method -> :class:`~chexp.metrics.perturbation.PerturbationCurves`
            (rows: every image of every task).
        tasks: the task of each row.
    """

    insertion: dict[str, PerturbationCurves]
    deletion: dict[str, PerturbationCurves]
    tasks: list[str]

    def table(self) -> pd.DataFrame:
        """Mean and std of the insertion and deletion AUC per method (paper Fig. 2)."""
        rows = []
        for name in self.insertion:
            ins, dele = self.insertion[name].auc, self.deletion[name].auc
            rows.append({"method": name, "insertion AUC": ins.mean(), "insertion std": ins.std(ddof=1) if len(ins) > 1 else float("nan"),
                         "deletion AUC": dele.mean(), "deletion std": dele.std(ddof=1) if len(dele) > 1 else float("nan"),
                         "insertion - deletion": ins.mean() - dele.mean(), "n": len(ins)})
        return pd.DataFrame(rows)

    def table_per_task(self) -> pd.DataFrame:
        """Mean insertion and deletion AUC per task and method."""
        tasks = np.asarray(self.tasks)
        rows = []
        for name in self.insertion:
            for task in dict.fromkeys(self.tasks):
                keep = tasks == task
                rows.append({"method": name, "task": task, "insertion AUC": self.insertion[name].auc[keep].mean(),
                             "deletion AUC": self.deletion[name].auc[keep].mean(), "n": int(keep.sum())})
        return pd.DataFrame(rows)


def _concat_curves(parts: Sequence[PerturbationCurves]) -> PerturbationCurves:
    return PerturbationCurves(parts[0].fractions, np.concatenate([p.scores for p in parts]),
                              np.concatenate([p.auc for p in parts]), parts[0].mode)


def perturbation_study(
    setup: Setup, samples: Mapping[str, SampleSet], methods: Sequence[str] = PAPER_METHODS,
    curve_points: int = 100, batch_size: int = 128, progress: bool = True,
) -> PerturbationStudy:
    """Insertion and deletion (blurred baseline, sigma 10, kernel 19) for every task's images.

    ``curve_points`` sets the pixels changed per step (``ceil(H * W / curve_points)``; the paper
    changes 25 of 50,176 pixels per step, about 2,000 points).
    """
    get_method_specs(methods)
    parts: dict[str, dict[str, list[PerturbationCurves]]] = {"insertion": {}, "deletion": {}}
    tasks: list[str] = []
    for task, s in tqdm(samples.items(), desc="tasks", disable=not progress):
        maps = setup.explain(s.images, task, methods)
        x = s.images.to(setup.device)
        step = math.ceil(x[0].numel() / curve_points)
        for name in methods:
            for mode in ("insertion", "deletion"):
                c = perturbation_curves(setup.classifier, x, maps[name].to(setup.device), task, mode=mode,
                                        pixels_per_step=step, batch_size=batch_size, progress=False)
                parts[mode].setdefault(name, []).append(c)
        tasks += [task] * len(s)
    return PerturbationStudy(
        {n: _concat_curves(c) for n, c in parts["insertion"].items()},
        {n: _concat_curves(c) for n, c in parts["deletion"].items()},
        tasks,
    )


# --------------------------------------------------------------------------------------------
# Tables 1-2: IoU
# --------------------------------------------------------------------------------------------
def iou_study(
    setup: Setup, samples: Mapping[str, SampleSet], methods: Sequence[str] = PAPER_METHODS, progress: bool = True,
) -> pd.DataFrame:
    """IoU of every method's map (top-p binarised, p = mask area) with the task's mask.

    Returns a long table: ``task``, ``sample``, ``method``, ``IoU``.
    """
    get_method_specs(methods)
    rows = []
    for task, s in tqdm(samples.items(), desc="tasks", disable=not progress):
        maps = setup.explain(s.images, task, methods)
        masks = torch.from_numpy(np.asarray(s.masks[task]))
        for name in methods:
            for i, v in enumerate(iou(maps[name], masks).tolist()):
                rows.append({"task": task, "sample": s.ids[i] if s.ids else i, "method": name, "IoU": v})
    return pd.DataFrame(rows)


def summarize_iou(long: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean IoU per task (rows) and method (columns), plus a ``mean`` row over tasks (the
    paper's Table 1 reports this row; Table 2 the per-detector rows)."""
    table = long.pivot_table(index="task", columns="method", values="IoU", aggfunc="mean", sort=False)
    if methods is not None:
        table = table[[m for m in methods if m in table.columns]]
    table.loc["mean"] = table.mean(axis=0)
    return table


def iou_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Per method over all tasks: mean, std and 95 % bootstrap CI of the IoU."""
    rows = []
    for name, part in long.groupby("method", sort=False):
        s = summarize(part["IoU"].to_numpy())
        rows.append({"method": name, "mean IoU": s.mean, "std": s.std, "CI low": s.ci_low, "CI high": s.ci_high, "n": s.n})
    return pd.DataFrame(rows)


def map_iou_table(maps: Mapping[str, torch.Tensor], masks: Sequence[np.ndarray], index: Sequence[str]) -> pd.DataFrame:
    """IoU of each kind of map (columns) for each image (rows, named ``index``), plus a ``mean`` row."""
    truth = torch.from_numpy(np.stack([np.asarray(m, bool) for m in masks]))
    table = pd.DataFrame({name: iou(m, truth).numpy() for name, m in maps.items()}, index=list(index))
    table.loc["mean"] = table.mean()
    return table


# --------------------------------------------------------------------------------------------
# Table 3: BCE vs weighted BCE
# --------------------------------------------------------------------------------------------
def weighted_bce_models(
    profile: Profile, prevalence: float = 0.1, progress: bool = False
) -> tuple[dict[str, Classifier], Callable[[int], torch.Tensor]]:
    """The two classifiers of Table 3, ``{"BCE": ..., "Weighted BCE": ...}``, and a function
    returning their training images (for the IBA statistics).

    Phantom profile: :func:`chexp.training.imbalanced_classifier` (every finding
    with prevalence ``prevalence``); cohen profile: the BrixIA detectors of :mod:`chexp.training.cohen`.
    """
    if isinstance(profile, PhantomProfile):
        from ..training import (
            ImbalancedTraining,
            imbalanced_classifier,
            phantom_training_images,
        )

        cfg = ImbalancedTraining(phantom=dataclasses.replace(profile.phantom, prevalence=prevalence))
        models = {"BCE": imbalanced_classifier(cfg, weighted=False, progress=progress),
                  "Weighted BCE": imbalanced_classifier(cfg, weighted=True, progress=progress)}
        return models, phantom_training_images(cfg.phantom, cfg.seed)
    if profile.name == "cohen":
        from ..training import CohenTraining, brixia_detectors

        cfg = CohenTraining(size=int(getattr(profile, "size", 128)))
        models = {"BCE": brixia_detectors(cfg, weighted=False, progress=progress),
                  "Weighted BCE": brixia_detectors(cfg, weighted=True, progress=progress)}
        return models, training_images(profile)
    raise UnsupportedProfileError(
        f"Table 3 needs a BCE and a weighted-BCE model trained on the same data; profile {profile.name!r} "
        "has none (torchxrayvision publishes no such pair)"
    )


def weighted_bce_study(
    profile: Profile,
    models: Mapping[str, Classifier],
    samples: Mapping[str, SampleSet],
    evaluation: SampleSet,
    device: str | torch.device = "cpu",
    method: str = "Inverse IBA",
    n_statistics: int = DEFAULT_STATISTICS_IMAGES,
    images: Callable[[int], torch.Tensor] | None = None,
    progress: bool = True,
    **setup_options: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3: per model, AUC on ``evaluation`` and mean IoU of ``method`` on each task's positives.

    Returns ``(table, long)``: the table has one row per model and columns ``<task> AUC``,
    ``<task> IoU``, ``mean AUC``, ``mean IoU``; ``long`` has the per-sample IoU.
    """
    get_method_spec(method)
    rows, longs = [], []
    for name, model in models.items():
        setup = make_setup(profile, model, device, n_statistics=n_statistics, images=images, **setup_options)
        scores = predict(setup.classifier, evaluation.images.to(setup.device), progress=False).numpy()
        aucs = auc_per_task(scores, evaluation.labels, list(model.targets))
        long = iou_study(setup, samples, [method], progress=progress)
        long["model"] = name
        longs.append(long)
        means = long.groupby("task", sort=False)["IoU"].mean()
        row: dict[str, Any] = {"model": name}
        for task in samples:
            row[f"{task} AUC"] = aucs.get(task, float("nan"))
            row[f"{task} IoU"] = float(means.get(task, float("nan")))
        row["mean AUC"] = float(np.nanmean([aucs.get(t, np.nan) for t in samples]))
        row["mean IoU"] = float(np.nanmean(means.to_numpy()))
        rows.append(row)
    return pd.DataFrame(rows), pd.concat(longs, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Fig. 4: Multi-layer IBA
# --------------------------------------------------------------------------------------------
def multilayer_maps(setup: Setup, images: torch.Tensor, target: Any) -> dict[str, torch.Tensor]:
    """IBA at ``setup.layer``, IBA at each Multi-layer layer, and the combined Multi-layer IBA map
    (``combine`` from ``setup.options``, default ``"masked"``) and the paper's Eq. 7
    intersection. Keys: ``"IBA"``, ``"IBA @ <layer>"`` ..., ``"Multi-layer IBA"``,
    ``"Multi-layer IBA (Eq. 7)"``; maps ``(B, 1, H, W)`` on CPU."""
    x = images.to(setup.device)
    ml = setup.method("Multi-layer IBA")
    assert isinstance(ml, MultiLayerIBA)
    per_layer = ml.attribute_layers(x, target)
    out = {"IBA": setup.method("IBA").attribute(x, target).cpu()}
    out.update({f"IBA @ {layer}": m.cpu() for layer, m in per_layer.items()})
    ordered = [per_layer[n] for n in ml.layer_names]
    out["Multi-layer IBA"] = ml.combine_maps(ordered).cpu()
    normalized = [ml.normalize(m) for m in ordered]
    out["Multi-layer IBA (Eq. 7)"] = intersection(normalized, [n > t for n, t in zip(normalized, ml.thresholds)]).cpu()
    return out
