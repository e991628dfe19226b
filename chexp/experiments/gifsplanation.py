"""Experiment logic of the Gifsplanation (Latent Shift) chapters of the book.

Every attribution method is reached by its name in the paper's tables, a slug of
:data:`chexp.methods.METHODS`: ``grad``, ``guided``, ``integrated``, ``gradcam``, ``lrp``,
``iterativedelete`` (the baselines of :mod:`chexp.baselines`) and ``latentshift-max`` / ``-mean``
/ ``-minmax`` / ``-sliding`` (:mod:`chexp.latentshift`). :func:`chexp.methods.build_method` builds
one for a classifier (and autoencoder); all of them have
``attribute(images (B, 1, H, W), target) -> maps (B, 1, H, W)``.

Functions, by figure:

=============================  ====================================================================
:func:`compute_maps`           maps of several methods for one batch (Fig. 4, E.1)
:func:`iou_per_sample`         IoU (top-p binarisation) per sample, task and method (Table 1, E.1)
:func:`summarize_iou`          mean, std and bootstrap CI per task and method (Table 1)
:func:`auc_table`              classifier ROC AUC per task (Table 1)
:func:`table1`                 the two combined in the paper's layout
:func:`bottleneck_study`       Fig. 2, Appendix D (autoencoders: ``Profile.bottleneck_autoencoders``)
:func:`prediction_curves`      prediction versus lambda for several models and tasks (Fig. 3)
:func:`cascade_steps` / :func:`randomization_study`           Fig. 5, Appendix H
:func:`reduction_iou`          the four 2D reductions of Appendix B and their IoU
:func:`search_comparison`      the lambda search rules of Appendix C
:func:`reader_study_vs_paper`  the reader study statistics next to the paper's (section 4.6)
=============================  ====================================================================

Maps are compared as absolute values (``|map|``), as the paper does for its cascading
randomization and for input gradients; signed methods (integrated gradients, LRP) therefore
count negative evidence as important too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import InputShapeError, UnknownNameError
from ..latentshift import (
    MAP_METHODS,
    LatentShift,
    LatentShiftExplanation,
    get_map,
    get_search,
)
from ..latentshift.search import SEARCH_RULES, FixedRange, LambdaSearch
from ..methods import build_method, get_method_specs
from ..metrics import classifier_auc, iou, summarize
from ..metrics.randomization import (
    RandomizationResult,
    cascading_randomization,
    parameterized_layers,
)
from ..models.base import Autoencoder, Classifier
from ..progress import tqdm

__all__ = [
    "ALL_METHODS",
    "PAPER_METHODS",
    "PAPER_READER_STUDY",
    "PROFILE_CLASSIFIERS",
    "BottleneckModel",
    "ShiftGrid",
    "auc_table",
    "bottleneck_study",
    "cascade_steps",
    "classifiers_for",
    "compute_maps",
    "default_tasks",
    "dense_curve",
    "iou_per_sample",
    "lambda_grid",
    "lambda_ranges",
    "most_findings",
    "prediction_curves",
    "randomization_study",
    "randomization_table",
    "reader_study_vs_paper",
    "reconstruction_impact",
    "reduction_iou",
    "reduction_maps",
    "search_comparison",
    "search_summary",
    "summarize_iou",
    "table1",
    "top_predicted",
]


#: The methods of the paper's Table 1, in its order.
PAPER_METHODS: tuple[str, ...] = ("grad", "guided", "integrated", "latentshift-max")
#: Table 1 methods plus Grad-CAM, LRP and Iterative Delete (Appendix E).
ALL_METHODS: tuple[str, ...] = ("grad", "guided", "integrated", "gradcam", "lrp", "iterativedelete",
                                "latentshift-max")


def compute_maps(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    images: torch.Tensor,
    target: str,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """``|map|`` of each method for one batch.

    Args:
        methods: slugs (or display names) of :data:`chexp.methods.METHODS`.
        images: ``(B, 1, H, W)`` in [-1024, 1024] on the models' device.
        target: the explained output.
        settings: per-method keyword arguments (e.g. ``{"integrated": {"n_steps": 20}}``).

    Returns:
        name -> float32 array ``(B, H, W)``, >= 0, on the CPU.
    """
    get_method_specs(methods)
    settings = settings or {}
    classifier.check_input(images)
    out: dict[str, np.ndarray] = {}
    for name in tqdm(methods, desc=f"maps ({target})", disable=not progress):
        method = build_method(name, classifier, autoencoder, **dict(settings.get(name, {})))
        maps = method.attribute(images, target)
        out[name] = maps.detach().abs().float().cpu().numpy()[:, 0]
    return out


def top_predicted(
    classifier: Classifier, images: torch.Tensor, target: str, k: int, below: float | None = None
) -> np.ndarray:
    """Indices of the ``k`` images with the highest prediction for ``target`` (highest first).

    ``below``: prefer images predicted below this value (e.g. 0.99: a saturated probability has
    almost no gradient, so its latent shift barely moves); the others follow, highest first.
    """
    index = classifier.target_index(target)
    with torch.no_grad():
        scores = classifier(images)[:, index].cpu().numpy()
    order = np.argsort(-scores, kind="stable")
    if below is not None:
        order = np.concatenate([order[scores[order] < below], order[scores[order] >= below]])
    return order[:k]


# ------------------------------------------------------------------------------------------
# Models and data of a profile
# ------------------------------------------------------------------------------------------
#: The classifiers each profile compares (Fig. 3, Table 1); profiles not listed use their own.
PROFILE_CLASSIFIERS: dict[str, tuple[str, ...]] = {
    "paper": ("densenet121-res224-all", "densenet121-res224-mimic_ch", "jfhealthcare"),
}


def classifiers_for(profile: Any, names: Sequence[str] | None = None, output: str = "probability",
                    device: str | torch.device = "cpu") -> dict[str, Classifier]:
    """Classifiers by name (:func:`chexp.models.zoo.load_classifier`), on ``device``, in eval mode.

    ``names=None`` gives :data:`PROFILE_CLASSIFIERS` of the profile, or else the profile's own
    classifier (named after the profile).
    """
    from ..models.zoo import load_classifier

    if names is None:
        names = PROFILE_CLASSIFIERS.get(profile.name)
    if names is None:
        return {profile.name: profile.classifier(output).to(device).eval()}
    return {n: load_classifier(n, output=output).to(device).eval() for n in names}


def default_tasks(profile: Any) -> list[str]:
    """The profile's localisation tasks (those with ground-truth masks), without Support Devices
    (a phantom finding that is not a pathology)."""
    return [t for t in profile.tasks if t != "Support Devices"]


def most_findings(samples: Any, tasks: Sequence[str]) -> int:
    """Index of the first sample positive for the most of ``tasks``."""
    cols = [list(samples.targets).index(t) for t in tasks]
    counts = np.nansum(np.asarray(samples.labels)[:, cols] == 1, axis=1)
    return int(np.argmax(counts))


# ------------------------------------------------------------------------------------------
# Table 1: IoU and AUC
# ------------------------------------------------------------------------------------------
def iou_per_sample(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    samples_by_task: Mapping[str, Any],
    device: str | torch.device = "cpu",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """IoU of every method's map with the ground-truth mask, one row per (task, method, sample).

    Args:
        samples_by_task: task -> :class:`~chexp.profiles.SampleSet` of images positive for it
            (``masks[task]`` is the ground truth).

    Returns:
        columns ``task``, ``method``, ``sample``, ``iou``, ``mask_pixels``, ``prediction``.
    """
    get_method_specs(methods)
    for task, samples in samples_by_task.items():
        if task not in samples.masks:
            raise KeyError(f"the samples for {task!r} have no ground-truth masks for it")
    rows = []
    bar = tqdm(total=sum(len(s) for s in samples_by_task.values()) * len(methods), desc="IoU",
               disable=not progress)
    for task, samples in samples_by_task.items():
        masks = np.asarray(samples.masks[task])
        index = classifier.target_index(task)
        for start in range(0, len(samples), batch_size):
            x = samples.images[start : start + batch_size].to(device)
            with torch.no_grad():
                pred = classifier(x)[:, index].cpu().numpy()
            mask = masks[start : start + batch_size]
            maps = compute_maps(methods, classifier, autoencoder, x, task, settings)
            for name, m in maps.items():
                scores = iou(torch.from_numpy(m), torch.from_numpy(mask)).numpy()
                for j, value in enumerate(scores):
                    rows.append({"task": task, "method": name, "sample": samples.ids[start + j]
                                 if samples.ids else str(start + j), "iou": float(value),
                                 "mask_pixels": int(mask[j].sum()), "prediction": float(pred[j])})
                bar.update(len(scores))
    bar.close()
    return pd.DataFrame(rows)


def summarize_iou(per_sample: pd.DataFrame, n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean ± std (ddof 1) and a 95 % bootstrap CI of the mean per task and method.

    Returns columns ``task``, ``method``, ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high``,
    ``iou`` (the paper's ``0.33±0.07`` text).
    """
    rows = []
    for (task, method), group in per_sample.groupby(["task", "method"], sort=False):
        s = summarize(group["iou"].to_numpy(), n_bootstrap=n_bootstrap, seed=seed)
        rows.append({"task": task, "method": method, "n": s.n, "mean": s.mean, "std": s.std,
                     "ci_low": s.ci_low, "ci_high": s.ci_high, "iou": f"{s.mean:.2f}±{s.std:.2f}"})
    return pd.DataFrame(rows)


def auc_table(classifier: Classifier, images: torch.Tensor, labels: np.ndarray, targets: Sequence[str],
              tasks: Sequence[str], batch_size: int = 64) -> pd.DataFrame:
    """ROC AUC of the classifier per task on labelled images (``labels`` columns ``targets``).

    Returns columns ``task``, ``auc``, ``n_positive``, ``n_negative``.
    """
    cols = [list(targets).index(t) for t in tasks]
    model_cols = [classifier.target_index(t) for t in tasks]
    all_auc = classifier_auc(classifier, images, _align_labels(labels, targets, classifier.targets),
                             batch_size=batch_size, progress=False)
    rows = []
    for task, col, _ in zip(tasks, cols, model_cols):
        y = labels[:, col]
        rows.append({"task": task, "auc": all_auc[task], "n_positive": int(np.nansum(y == 1)),
                     "n_negative": int(np.nansum(y == 0))})
    return pd.DataFrame(rows)


def _align_labels(labels: np.ndarray, targets: Sequence[str], model_targets: Sequence[str]) -> np.ndarray:
    """Labels ``(N, len(targets))`` -> ``(N, len(model_targets))``, NaN for outputs without labels."""
    out = np.full((labels.shape[0], len(model_targets)), np.nan)
    for j, name in enumerate(model_targets):
        if name in targets:
            out[:, j] = labels[:, list(targets).index(name)]
    return out


def table1(summary: pd.DataFrame, auc: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's Table 1 layout: one row per (task, method), the task's AUC beside the IoU."""
    t = summary.merge(auc[["task", "auc"]], on="task", how="left")
    if methods is not None:
        t["method"] = pd.Categorical(t["method"], categories=list(methods), ordered=True)
        t = t.sort_values(["task", "method"], kind="stable")
        t["method"] = t["method"].astype(str)
    return t[["task", "auc", "method", "iou", "mean", "std", "ci_low", "ci_high", "n"]].reset_index(drop=True)


# ------------------------------------------------------------------------------------------
# Fig. 2 / Appendix D: the bottleneck study
# ------------------------------------------------------------------------------------------
@dataclass
class BottleneckModel:
    """One autoencoder of the bottleneck study and what it gave.

    Attributes:
        latent_channels: channels of the spatial latent; latent_size: values in the latent.
        autoencoder: the model; train_seconds: its training time (from its card).
        mae: held-out mean absolute reconstruction error (intensity units of [-1024, 1024]).
        explanation: Latent Shift explanation of the study images.
        iou: per-image IoU of latentshift-max with the masks.
    """

    latent_channels: int
    latent_size: int
    autoencoder: Autoencoder
    train_seconds: float
    mae: float = float("nan")
    explanation: LatentShiftExplanation | None = None
    iou: np.ndarray = field(default_factory=lambda: np.zeros(0))


def reconstruction_mae(autoencoder: Autoencoder, images: torch.Tensor, batch_size: int = 64) -> float:
    """Mean ``|D(E(x)) - x|`` over ``images`` (intensity units)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            total += float((autoencoder.decode(autoencoder.encode(x)) - x).abs().sum())
            count += x.numel()
    return total / max(count, 1)


def bottleneck_study(
    classifier: Classifier,
    autoencoders: Mapping[int, Autoencoder],
    images: torch.Tensor,
    masks: np.ndarray,
    target: str,
    mae_images: torch.Tensor,
    search: str | LambdaSearch | None = None,
    n_frames: int = 10,
) -> tuple[list[BottleneckModel], pd.DataFrame]:
    """Latent Shift with each autoencoder on the same images (paper Fig. 2, D.1, D.2).

    Returns:
        the :class:`BottleneckModel` list (in the order given) and a table with columns
        ``latent_channels``, ``latent_size``, ``mae``, ``iou_mean``, ``iou_std``,
        ``prediction_drop`` (mean prediction at lambda = 0 minus at the lower bound),
        ``train_seconds``.
    """
    models, rows = [], []
    for c, ae in autoencoders.items():
        ae.eval()
        with torch.no_grad():
            latent_size = int(np.prod(ae.encode(images[:1]).shape[1:]))
        expl = LatentShift(classifier, ae, search=search, n_frames=n_frames).explain(images, target)
        scores = iou(expl.heatmap.cpu(), torch.from_numpy(np.asarray(masks))).numpy()
        card = getattr(ae, "card", None)
        m = BottleneckModel(int(c), latent_size, ae, float(getattr(card, "train_seconds", float("nan"))),
                            reconstruction_mae(ae, mae_images), expl, scores)
        models.append(m)
        rows.append({"latent_channels": m.latent_channels, "latent_size": m.latent_size, "mae": m.mae,
                     "iou_mean": float(np.nanmean(scores)), "iou_std": float(np.nanstd(scores, ddof=1))
                     if len(scores) > 1 else float("nan"),
                     "prediction_drop": float((expl.initial_prediction - expl.predictions[:, 0]).mean()),
                     "train_seconds": m.train_seconds})
    return models, pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Fig. 3: prediction versus lambda, several models and tasks
# ------------------------------------------------------------------------------------------
@dataclass
class ShiftGrid:
    """Frames and predictions of several (model, task) pairs on a common number of lambda steps.

    Each task has its own lambda grid (shared by the models): tasks differ in how far the latent
    must move, and a grid wide enough for one task walks another far off the data.

    Attributes:
        lambdas: task -> ``(L,)``; frames: (model, task) -> ``(L, H, W)``; curves: long table with
        columns ``model``, ``task``, ``step``, ``lambda``, ``prediction``, ``initial``.
    """

    lambdas: dict[str, np.ndarray]
    frames: dict[tuple[str, str], np.ndarray]
    curves: pd.DataFrame

    @property
    def n_steps(self) -> int:
        return len(next(iter(self.lambdas.values())))


def lambda_ranges(
    classifiers: Mapping[str, Classifier], autoencoder: Autoencoder, image: torch.Tensor, tasks: Sequence[str],
    search: str | LambdaSearch | None = None, margin: float = 1.5,
) -> dict[str, tuple[float, float]]:
    """Per task, a lambda range covering every model's searched bounds, widened by ``margin``."""
    out = {}
    for task in tasks:
        lows, highs = [], []
        for clf in classifiers.values():
            if task not in clf.targets:
                continue
            e = LatentShift(clf, autoencoder, search=search, n_frames=2).explain(image[:1], task)
            lows.append(float(e.bounds[0, 0]))
            highs.append(float(e.bounds[0, 1]))
        if lows:
            out[task] = (margin * min(lows), margin * max(max(highs), 0.2 * abs(min(lows))))
    return out


def prediction_curves(
    classifiers: Mapping[str, Classifier],
    autoencoder: Autoencoder,
    image: torch.Tensor,
    tasks: Sequence[str],
    lambda_ranges: Mapping[str, tuple[float, float]],
    n_points: int = 21,
) -> ShiftGrid:
    """Prediction of each task along its own latent shift, for each model (paper Fig. 3).

    The same autoencoder serves every model; each (model, task) shifts along its own gradient,
    over ``n_points`` lambdas spanning the task's range in ``lambda_ranges`` (see
    :func:`lambda_ranges`). Tasks a model does not predict, or without a range, are left out.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise InputShapeError(f"prediction_curves takes one image (1, 1, H, W), got {tuple(image.shape)}")
    rows, frames, grids = [], {}, {}
    for task in tasks:
        if task not in lambda_ranges:
            continue
        lo, hi = (float(v) for v in lambda_ranges[task])
        grids[task] = np.linspace(lo, hi, int(n_points))
        for model_name, clf in classifiers.items():
            if task not in clf.targets:
                continue
            e = LatentShift(clf, autoencoder, search=FixedRange(lo, hi), n_frames=int(n_points)).explain(image, task)
            frames[(model_name, task)] = e.frames[0, :, 0].cpu().numpy()
            for step, (lam, p) in enumerate(zip(e.lambdas[0].tolist(), e.predictions[0].tolist())):
                rows.append({"model": model_name, "task": task, "step": step, "lambda": lam, "prediction": p,
                             "initial": float(e.initial_prediction[0])})
    if not frames:
        raise ValueError(f"no classifier predicts any of {list(tasks)} with a lambda range")
    return ShiftGrid(grids, frames, pd.DataFrame(rows))


# ------------------------------------------------------------------------------------------
# Fig. 5 / Appendix H: cascading randomization
# ------------------------------------------------------------------------------------------
def cascade_steps(model: torch.nn.Module) -> list[list[str]]:
    """Randomization steps, output end first: parameterised leaf layers grouped by block.

    A layer under a module called ``features`` is grouped with the rest of its block (the child
    of ``features`` it belongs to, e.g. ``features.block3`` or ``net.features.denseblock4``);
    other layers (the classifier head) are steps of their own.
    """
    groups: dict[str, list[str]] = {}
    for name in parameterized_layers(model):
        parts = name.split(".")
        key = name
        if "features" in parts[:-1]:
            k = parts.index("features")
            key = ".".join(parts[: k + 2])
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def randomization_study(
    methods: Sequence[str],
    classifier: Classifier,
    autoencoder: Autoencoder | None,
    images: torch.Tensor,
    target: str,
    steps: Sequence[Sequence[str]] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, RandomizationResult]:
    """Cascading randomization of the classifier for each method (the autoencoder is kept)."""
    get_method_specs(methods)
    settings = settings or {}
    plan = [list(s) for s in (steps if steps is not None else cascade_steps(classifier))]
    out = {}
    for name in tqdm(methods, desc="randomization", disable=not progress):
        def explain(model: torch.nn.Module, name: str = name) -> torch.Tensor:
            method = build_method(name, model, autoencoder, **dict(settings.get(name, {})))
            return method.attribute(images, target).cpu()

        out[name] = cascading_randomization(classifier, explain, steps=plan, seed=seed, progress=False)
    return out


def randomization_table(results: Mapping[str, RandomizationResult]) -> pd.DataFrame:
    """Long table: ``method``, ``step`` (0 = original), ``layers``, ``metric``, ``mean``, ``std``."""
    rows = []
    for name, r in results.items():
        for metric in ("pearson", "spearman", "ssim"):
            values = getattr(r, metric)
            for k, label in enumerate(r.steps):
                rows.append({"method": name, "step": k, "layers": label, "metric": metric,
                             "mean": float(np.nanmean(values[k])), "std": float(np.nanstd(values[k]))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Appendix B: 2D reductions
# ------------------------------------------------------------------------------------------
def reduction_maps(explanation: LatentShiftExplanation, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Every 2D reduction of one explanation's frames: name -> ``(B, H, W)`` (Appendix B)."""
    names = list(names) if names is not None else list(MAP_METHODS)
    return {f"latentshift-{n}": get_map(n)(explanation.frames, explanation.reconstruction).cpu().numpy()
            for n in names}


def reduction_iou(
    classifier: Classifier,
    autoencoder: Autoencoder,
    samples_by_task: Mapping[str, Any],
    device: str | torch.device = "cpu",
    search: str | LambdaSearch | None = None,
    n_frames: int = 10,
    batch_size: int = 16,
) -> tuple[pd.DataFrame, dict[str, LatentShiftExplanation]]:
    """IoU of each 2D reduction, computed from the same frames (one Latent Shift run per batch).

    Returns:
        per-sample table (``task``, ``method``, ``sample``, ``iou``) and the first batch's
        explanation per task (for figures).
    """
    rows, first = [], {}
    for task, samples in samples_by_task.items():
        masks = torch.from_numpy(np.asarray(samples.masks[task]))
        for start in range(0, len(samples), batch_size):
            x = samples.images[start : start + batch_size].to(device)
            e = LatentShift(classifier, autoencoder, search=search, n_frames=n_frames).explain(x, task)
            first.setdefault(task, e)
            for name, m in reduction_maps(e).items():
                for j, v in enumerate(iou(torch.from_numpy(m), masks[start : start + batch_size]).tolist()):
                    rows.append({"task": task, "method": name, "sample": start + j, "iou": v})
    return pd.DataFrame(rows), first


# ------------------------------------------------------------------------------------------
# Appendix C: lambda search rules
# ------------------------------------------------------------------------------------------
def search_comparison(
    classifier: Classifier,
    autoencoder: Autoencoder,
    images: torch.Tensor,
    target: str,
    rules: Sequence[str] = tuple(SEARCH_RULES),
    n_frames: int = 10,
    sequential: bool = True,
) -> tuple[pd.DataFrame, dict[str, LatentShiftExplanation]]:
    """Run every lambda search rule on the same images.

    Args:
        rules: names in :data:`chexp.latentshift.search.SEARCH_RULES`.
        sequential: also count the evaluations of the released-code-style sequential walk
            (:func:`chexp.latentshift.reference.sequential_latent_shift`, one image at a time).

    Returns:
        one row per (rule, image): ``rule``, ``image``, ``lower``, ``upper``, ``lower_at_limit``,
        ``upper_at_limit``, ``initial``, ``at_lower``, ``at_upper`` (predictions), ``evaluations``
        (batched search + frames), ``rounds``, ``sequential_evaluations``, ``sequential_lower``;
        and the explanations by rule.
    """
    from ..latentshift.reference import sequential_latent_shift

    for r in rules:
        if r not in SEARCH_RULES:
            raise UnknownNameError(r, SEARCH_RULES, "lambda search rule")
    rows, expls = [], {}
    for r in rules:
        rule = get_search(r)
        e = LatentShift(classifier, autoencoder, search=rule, n_frames=n_frames).explain(images, target)
        expls[r] = e
        for b in range(len(images)):
            row = {"rule": r, "image": b, "lower": float(e.bounds[b, 0]), "upper": float(e.bounds[b, 1]),
                   "lower_at_limit": bool(e.at_limit[b, 0]), "upper_at_limit": bool(e.at_limit[b, 1]),
                   "initial": float(e.initial_prediction[b]), "at_lower": float(e.predictions[b, 0]),
                   "at_upper": float(e.predictions[b, -1]),
                   "evaluations": e.evaluations / len(images), "rounds": e.search_result.rounds}
            if sequential:
                ref = sequential_latent_shift(classifier, autoencoder, images[b : b + 1], target, rule, n_frames)
                row["sequential_evaluations"] = ref.evaluations
                row["sequential_lower"] = ref.lower
            rows.append(row)
    return pd.DataFrame(rows), expls


def search_summary(bounds: pd.DataFrame) -> pd.DataFrame:
    """Mean over images per rule of :func:`search_comparison`'s table, with ``fall`` (the
    prediction at lambda = 0 minus at the lower bound) and the share of bounds at a rule's limit."""
    t = bounds.assign(fall=bounds["initial"] - bounds["at_lower"],
                      at_limit=bounds["lower_at_limit"] | bounds["upper_at_limit"])
    cols = [c for c in ("lower", "upper", "initial", "at_lower", "fall", "at_limit", "evaluations",
                        "sequential_evaluations") if c in t.columns]
    return t.groupby("rule", sort=False)[cols].mean()


def lambda_grid(low: float, high: float, n: int, smallest: float | None = None) -> np.ndarray:
    """``n`` lambdas from ``low`` (< 0) to ``high`` (>= 0), geometrically spaced on each side so
    that bounds near 0 and far from it are both resolved; includes 0. ``smallest`` is the
    smallest nonzero ``|lambda|`` (default ``1e-3`` of the widest side)."""
    if not low < 0 <= high:
        raise ValueError(f"lambda_grid needs low < 0 <= high, got {low}, {high}")
    width = max(-low, high)
    smallest = smallest or 1e-3 * width
    n_neg = max(2, round((n - 1) * (1.0 if high == 0 else 0.75)))
    neg = -np.geomspace(smallest, -low, n_neg)[::-1]
    pos = np.geomspace(min(smallest, high), high, n - 1 - n_neg) if high > 0 and n - 1 - n_neg > 0 else np.zeros(0)
    return np.concatenate([neg, [0.0], pos])


def dense_curve(classifier: Classifier, autoencoder: Autoencoder, images: torch.Tensor, target: str,
                lambdas: Sequence[float]) -> np.ndarray:
    """Predictions ``(B, L)`` of ``D(z + lambda dz)`` on a lambda grid (no extra sigmoid)."""
    return LatentShift(classifier, autoencoder).prediction_curve(images, target, lambdas).numpy()


# ------------------------------------------------------------------------------------------
# Section 4.6: the reader study
# ------------------------------------------------------------------------------------------
#: The paper's numbers (section 4.6): question, label -> (mean, std, p) of Latent Shift minus
#: traditional. Only the confidence question is reported.
PAPER_READER_STUDY: dict[tuple[str, int], tuple[float, float, float]] = {
    ("confidence", 1): (0.15, 0.95, 0.01),
    ("confidence", 0): (0.04, 1.06, 0.57),
}


def reader_study_vs_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`chexp.metrics.reader_study.wilcoxon_summary` rows with the paper's numbers beside
    them (``paper_mean``, ``paper_std``, ``paper_p``; NaN where the paper gives none)."""
    out = summary.copy()
    out.insert(1, "predictions", out["label"].map({1: "true positive", 0: "false positive"}))
    for k, col in enumerate(("paper_mean", "paper_std", "paper_p")):
        out[col] = [PAPER_READER_STUDY.get((q, int(lab)), (np.nan,) * 3)[k]
                    for q, lab in zip(out["question"], out["label"])]
    return out


# ------------------------------------------------------------------------------------------
# Appendix K: how much the autoencoder changes predictions
# ------------------------------------------------------------------------------------------
def reconstruction_impact(classifier: Classifier, autoencoder: Autoencoder, images: torch.Tensor,
                          labels: np.ndarray, targets: Sequence[str], tasks: Sequence[str],
                          batch_size: int = 64) -> pd.DataFrame:
    """Mean ``f(x)`` and ``f(D(E(x)))`` per task and label (paper Table K.1)."""
    preds, recon_preds = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            preds.append(classifier(x).cpu())
            recon_preds.append(classifier(autoencoder.decode(autoencoder.encode(x))).cpu())
    p, q = torch.cat(preds).numpy(), torch.cat(recon_preds).numpy()
    rows = []
    for task in tasks:
        j, col = classifier.target_index(task), list(targets).index(task)
        for lab, name in ((1, "positive"), (0, "negative")):
            sel = labels[:, col] == lab
            if sel.any():
                rows.append({"label": name, "task": task, "n": int(sel.sum()), "mean_f_x": float(p[sel, j].mean()),
                             "mean_f_recon": float(q[sel, j].mean()),
                             "diff": float(p[sel, j].mean() - q[sel, j].mean())})
    return pd.DataFrame(rows)
