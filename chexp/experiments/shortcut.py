"""A planted shortcut with known ground truth: does an explanation show what a classifier uses?

On phantoms a support device (a chest tube or line) can be made to co-occur with a finding
(:attr:`chexp.phantoms.PhantomConfig.device_cooccurrence`). A classifier trained on such data may
learn the device as a shortcut for the finding; its *clean twin* is trained on the same recipe
(same sample streams, same seed) with devices independent of every finding. Because the phantom
generator can render the same phantom (same random state) without the device or without the
finding (``generate(..., disable=...)``; the image changes exactly on that object's mask), the
classifier's real reliance is measured by intervention, per image:

``device_effect``
    ``f(x) - f(x without the device)``: how much of the finding's score the device carries.
``finding_effect``
    ``f(x) - f(x without the finding)``: how much the finding itself carries.

(``f``: the finding's logit by default, which does not saturate; ``_probability`` columns give the
same on the probability.) Every attribution method is then asked where it puts its mass
(:func:`mass_fractions`: the share of ``sum |map|`` on the device's mask, on the finding's mask,
elsewhere). An explanation *reveals the shortcut* when its device share is higher for the
shortcut model than for the clean one on the same images (:func:`reveal_table`, a paired
bootstrap over images), and it *tracks the reliance* when, across images, its device share rises
with the measured device effect (:func:`tracking_table`, Spearman's rho with a bootstrap
interval). This is the one experiment of chexp where what the classifier uses is known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from ..errors import InvalidParameterError, UnknownNameError
from ..latentshift import LatentShift
from ..latentshift.core import LatentShiftExplanation
from ..metrics._util import spearman
from ..metrics.localization import MASS_MODES, in_mask_fraction
from ..models.base import Autoencoder, Classifier, OutputKind
from ..models.modules import eval_mode
from ..phantoms import FINDINGS, PhantomConfig, generate
from ..phantoms.config import check_finding_name
from ..profiles import Profile
from ..progress import tqdm
from .iba_setup import PAPER_METHODS, make_setup

__all__ = [
    "DEVICE",
    "LATENT_SHIFT",
    "MASS_MODES",
    "REGIONS",
    "ShortcutCases",
    "ShortcutStudy",
    "bootstrap_spearman",
    "classifier_table",
    "explain_cases",
    "latent_shift_table",
    "mass_fractions",
    "regions",
    "reliance",
    "reliance_summary",
    "reveal_table",
    "run_shortcut_study",
    "shortcut_cases",
    "summary_text",
    "tracking_table",
]

#: The label of the planted shortcut.
DEVICE = "Support Devices"
#: The name of the Latent Shift map (Appendix B's per-pixel max over frames) in the tables.
LATENT_SHIFT = "Latent Shift"
#: The regions every map's mass is split into (a partition of the image).
REGIONS: tuple[str, ...] = ("device", "finding", "elsewhere")
_OTHERS = tuple(f for f in FINDINGS if f != DEVICE)


@dataclass
class ShortcutCases:
    """Phantoms carrying the finding and a device (and no other finding), each also rendered
    without the device and without the finding (same phantom, same random state).

    Attributes:
        finding: the finding the shortcut stands for.
        images: ``(N, 1, S, S)`` in [-1024, 1024].
        without_device: the same phantoms without their device, ``(N, 1, S, S)``.
        without_finding: the same phantoms without the finding, ``(N, 1, S, S)``.
        device_masks: bool ``(N, S, S)``, where ``images`` and ``without_device`` may differ.
        finding_masks: bool ``(N, S, S)``, where ``images`` and ``without_finding`` may differ.
        indices: the sample indices in the stream ``seed``.
        seed: the phantom stream; config: the generator settings.
    """

    finding: str
    images: torch.Tensor
    without_device: torch.Tensor
    without_finding: torch.Tensor
    device_masks: np.ndarray
    finding_masks: np.ndarray
    indices: np.ndarray
    seed: int
    config: PhantomConfig

    def __len__(self) -> int:
        return len(self.images)


def _render(
    indices: np.ndarray, seed: int, config: PhantomConfig, disable: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, S, S)`` and masks ``(N, 5, S, S)`` of the samples ``indices`` of stream
    ``seed`` (any order), with the findings ``disable`` switched off."""
    parts = [generate(1, seed=seed, config=config, start=int(i), disable=disable) for i in indices]
    return (np.concatenate([p.images for p in parts]), np.concatenate([p.masks for p in parts]))


def shortcut_cases(
    n: int, config: PhantomConfig, finding: str = "Pneumothorax", *, seed: int = 0, start: int = 2_000_000,
) -> ShortcutCases:
    """The first ``n`` phantoms from sample ``start`` of stream ``seed`` that carry ``finding``
    and a support device and no other finding, with their two interventions.

    Args:
        n: cases (>= 2).
        config: the generator settings (its co-occurrence makes such cases common).
        finding: a phantom finding other than the device.
        seed, start: where to draw from (the default is the phantom profile's held-out range).

    Raises:
        InvalidParameterError: ``n`` < 2.
        UnknownNameError: ``finding`` is not a phantom finding, or is the device itself.
    """
    check_finding_name(finding)
    if finding == DEVICE:
        raise UnknownNameError(finding, _OTHERS, "shortcut finding")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise InvalidParameterError(f"n must be an integer >= 2, got {n!r}")
    k, d = FINDINGS.index(finding), FINDINGS.index(DEVICE)
    others = [j for j, f in enumerate(FINDINGS) if f not in (finding, DEVICE)]
    picked: list[np.ndarray] = []
    found, at = 0, start
    while found < n:
        chunk = max(64, 12 * (n - found))
        ps = generate(chunk, seed=seed, config=config, start=at)
        rows = np.flatnonzero((ps.labels[:, k] == 1) & (ps.labels[:, d] == 1) & (ps.labels[:, others].sum(1) == 0))
        picked.append(at + rows[: n - found])
        found += len(picked[-1])
        at += chunk
    indices = np.concatenate(picked)
    images, masks = _render(indices, seed, config)
    no_device, _ = _render(indices, seed, config, (DEVICE,))
    no_finding, _ = _render(indices, seed, config, (finding,))
    return ShortcutCases(
        finding=finding,
        images=torch.from_numpy(images),
        without_device=torch.from_numpy(no_device),
        without_finding=torch.from_numpy(no_finding),
        device_masks=masks[:, d],
        finding_masks=masks[:, k],
        indices=indices,
        seed=seed,
        config=config,
    )


# --------------------------------------------------------------------------------------------
# reliance by intervention
# --------------------------------------------------------------------------------------------
def reliance(classifier: Classifier, cases: ShortcutCases, output: OutputKind = "logit") -> pd.DataFrame:
    """The classifier's score for the finding on each case and on its two interventions.

    Args:
        classifier: predicts ``cases.finding``; ``output``: the score kind compared
            (``"logit"``: effects add up and do not saturate; ``"probability"``).

    Returns:
        One row per case: ``index`` (phantom sample), ``score``, ``score_without_device``,
        ``score_without_finding``, ``device_effect`` (score minus score without the device) and
        ``finding_effect`` (score minus score without the finding).
    """
    model = classifier.with_output(output)
    col = model.target_index(cases.finding)
    with torch.no_grad(), eval_mode(model):
        score, no_dev, no_fnd = (model(x)[:, col].double().cpu().numpy()
                                 for x in (cases.images, cases.without_device, cases.without_finding))
    return pd.DataFrame({
        "index": cases.indices, "score": score, "score_without_device": no_dev, "score_without_finding": no_fnd,
        "device_effect": score - no_dev, "finding_effect": score - no_fnd,
    })


# --------------------------------------------------------------------------------------------
# where a map puts its mass
# --------------------------------------------------------------------------------------------
def regions(cases: ShortcutCases, dilation: int = 0) -> dict[str, np.ndarray]:
    """The partition of every image into :data:`REGIONS`, bool ``(N, S, S)`` each.

    ``device``: the device's mask grown by ``dilation`` pixels (a tolerance for maps coarser than a
    tube); ``finding``: the finding's mask (grown likewise) outside ``device``; ``elsewhere``: the
    rest. A pixel on both objects counts as device.

    Raises:
        InvalidParameterError: negative ``dilation``.
    """
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise InvalidParameterError(f"dilation must be a non-negative int, got {dilation!r}")

    def grow(masks: np.ndarray) -> np.ndarray:
        if dilation == 0:
            return masks.astype(bool)
        return np.stack([ndimage.binary_dilation(m, iterations=dilation) for m in masks])

    device = grow(cases.device_masks)
    finding = grow(cases.finding_masks) & ~device
    return {"device": device, "finding": finding, "elsewhere": ~(device | finding)}


def mass_fractions(
    maps: np.ndarray | torch.Tensor, parts: Mapping[str, np.ndarray], mode: str = "absolute"
) -> dict[str, np.ndarray]:
    """The share of each map's mass in each region (:func:`chexp.metrics.localization.in_mask_fraction`
    of every region).

    Args:
        maps: ``(N, H, W)`` or ``(N, 1, H, W)``, any sign.
        parts: region name -> bool ``(N, H, W)`` (e.g. :func:`regions`).
        mode: a key of :data:`MASS_MODES`: ``"absolute"`` (mass ``|map|``) or ``"positive"``
            (``max(map, 0)``: evidence for the finding only).

    Returns:
        region name -> ``(N,)`` float64 in [0, 1] (NaN for a map without mass); for a partition
        they sum to 1.

    Raises:
        UnknownNameError: an unknown ``mode``.
    """
    return {name: in_mask_fraction(maps, p, mode) for name, p in parts.items()}


# --------------------------------------------------------------------------------------------
# the methods
# --------------------------------------------------------------------------------------------
def explain_cases(
    classifier: Classifier,
    autoencoder: Autoencoder,
    cases: ShortcutCases,
    training_images: Callable[[int], torch.Tensor],
    profile: Profile,
    methods: Sequence[str] = PAPER_METHODS,
    n_statistics: int = 400,
    latent_shift: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], LatentShiftExplanation]:
    """Maps of Latent Shift and ``methods`` for the finding on every case.

    Args:
        classifier: output ``"probability"`` (what the papers explain).
        autoencoder: Latent Shift's.
        training_images: ``n -> (n, 1, S, S)``, the classifier's own training images (the IBA
            family fits its per-unit statistics on them; cached beside the model).
        profile: the profile the models belong to (its IBA layers).
        methods: display names of :data:`chexp.methods.METHODS` built through a CheXplain-IBA
            :class:`~chexp.experiments.iba_setup.Setup` (baselines and the IBA family).
        latent_shift: keyword arguments of :class:`~chexp.latentshift.LatentShift`.

    Returns:
        (method -> maps ``(N, S, S)`` float32 as the methods return them, with
        :data:`LATENT_SHIFT` first; the Latent Shift explanation with its frames).
    """
    setup = make_setup(profile, classifier=classifier, images=training_images, n_statistics=n_statistics)
    with eval_mode(classifier, autoencoder):
        expl = LatentShift(classifier, autoencoder, **dict(latent_shift or {})).explain(cases.images, cases.finding)
        maps = {LATENT_SHIFT: expl.heatmap.float().cpu().numpy()}
        maps.update({name: m[:, 0].numpy() for name, m in
                     setup.explain(cases.images, cases.finding, methods, progress=progress).items()})
    return maps, expl


@dataclass
class ShortcutStudy:
    """Everything :func:`run_shortcut_study` measured.

    Attributes:
        cases: the images and their interventions.
        reliance: one row per (``model``, case): :func:`reliance` on the logit, plus the same
            effects on the probability (``device_effect_probability``,
            ``finding_effect_probability``).
        maps: model -> method -> maps ``(N, S, S)``.
        explanations: model -> the Latent Shift explanation (frames for the GIF).
        fractions: one row per (``model``, ``method``, case): ``index``, the mass share of each
            of :data:`REGIONS`, the region's share of the image (``device_area``,
            ``finding_area``) and the case's ``device_effect`` / ``finding_effect`` (logit).
        mode, dilation: how the mass was counted (:func:`mass_fractions`, :func:`regions`).
    """

    cases: ShortcutCases
    reliance: pd.DataFrame
    maps: dict[str, dict[str, np.ndarray]]
    explanations: dict[str, LatentShiftExplanation]
    fractions: pd.DataFrame
    mode: str
    dilation: int


def run_shortcut_study(
    classifiers: Mapping[str, Classifier],
    autoencoder: Autoencoder,
    cases: ShortcutCases,
    training_images: Mapping[str, Callable[[int], torch.Tensor]],
    profile: Profile,
    methods: Sequence[str] = PAPER_METHODS,
    *,
    mode: str = "absolute",
    dilation: int = 1,
    n_statistics: int = 400,
    latent_shift: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> ShortcutStudy:
    """Reliance, maps and mass fractions of every classifier (e.g. ``{"shortcut": ..., "clean": ...}``)
    on the same cases.

    Args:
        classifiers: name -> classifier (output ``"probability"``).
        training_images: name -> that classifier's training images (``n -> (n, 1, S, S)``).
        mode, dilation: see :func:`mass_fractions` and :func:`regions`.
        Others: as for :func:`explain_cases`.
    """
    if mode not in MASS_MODES:
        raise UnknownNameError(mode, MASS_MODES, "mass mode")
    parts = regions(cases, dilation)
    area = {f"{r}_area": parts[r].reshape(len(cases), -1).mean(1) for r in ("device", "finding")}
    rel, rows, all_maps, expls = [], [], {}, {}
    for name in tqdm(list(classifiers), desc="classifiers", disable=not progress):
        model = classifiers[name]
        r = reliance(model, cases, "logit")
        p = reliance(model, cases, "probability")
        r["device_effect_probability"] = p["device_effect"]
        r["finding_effect_probability"] = p["finding_effect"]
        r.insert(0, "model", name)
        rel.append(r)
        maps, expl = explain_cases(model, autoencoder, cases, training_images[name], profile, methods,
                                   n_statistics, latent_shift)
        all_maps[name], expls[name] = maps, expl
        for method, m in maps.items():
            frame = pd.DataFrame({"model": name, "method": method, "index": cases.indices,
                                  **mass_fractions(m, parts, mode), **area,
                                  "device_effect": r["device_effect"].to_numpy(),
                                  "finding_effect": r["finding_effect"].to_numpy()})
            rows.append(frame)
    return ShortcutStudy(cases, pd.concat(rel, ignore_index=True), all_maps, expls,
                         pd.concat(rows, ignore_index=True), mode, dilation)


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------
def reliance_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of each effect per model (rows in the order they appear)."""
    cols = ["score", "device_effect", "finding_effect", "device_effect_probability", "finding_effect_probability"]
    cols = [c for c in cols if c in table]
    return table.groupby("model", sort=False)[cols].agg(["mean", "std"])


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def bootstrap_spearman(
    x: np.ndarray, y: np.ndarray, n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Spearman's rho of ``x`` and ``y`` and a percentile bootstrap interval (pairs resampled).

    Args:
        x, y: ``(n,)`` paired values (pairs with a NaN are dropped).
        n_bootstrap: resamples (drawn at once, seeded by ``seed``).
        level: coverage of the interval.

    Returns:
        ``(rho, low, high)``; NaN where a side is constant (a resample whose side is constant
        is left out of the interval).

    Raises:
        InvalidParameterError: ``x`` and ``y`` differ in length.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidParameterError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3:
        return float("nan"), float("nan"), float("nan")
    rho = float(spearman(torch.from_numpy(x), torch.from_numpy(y)))
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_bootstrap, x.size))
    boot = spearman(torch.from_numpy(x[idx]), torch.from_numpy(y[idx])).numpy()
    return (rho, *_percentile_interval(boot, level))


def reveal_table(
    fractions: pd.DataFrame, shortcut: str = "shortcut", clean: str = "clean",
    n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
) -> pd.DataFrame:
    """Per method: the mean device share for both models (columns ``device (<model>)``), their
    paired difference (same images) with a percentile bootstrap interval, and whether the
    explanation reveals the shortcut (``reveals shortcut``: the interval lies above 0); the mean
    finding share of both models (``finding (<model>)``) and the device's share of the image
    (``device area``, chance).

    Args:
        fractions: :attr:`ShortcutStudy.fractions`.
        shortcut, clean: the two models' names in its ``model`` column.
    """
    out = []
    rng = np.random.default_rng(seed)
    for method, rows in fractions.groupby("method", sort=False):
        a = rows[rows["model"] == shortcut].set_index("index")
        b = rows[rows["model"] == clean].set_index("index").reindex(a.index)
        diff = (a["device"] - b["device"]).to_numpy()
        diff = diff[np.isfinite(diff)]
        boot = diff[rng.integers(0, diff.size, size=(n_bootstrap, diff.size))].mean(1) if diff.size else np.array([])
        low, high = _percentile_interval(boot, level)
        out.append({
            "method": method,
            f"device ({shortcut})": a["device"].mean(), f"device ({clean})": b["device"].mean(),
            "difference": float(diff.mean()) if diff.size else float("nan"), "CI low": low, "CI high": high,
            "reveals shortcut": bool(low > 0),
            f"finding ({shortcut})": a["finding"].mean(), f"finding ({clean})": b["finding"].mean(),
            "device area": a["device_area"].mean(),
        })
    return pd.DataFrame(out)


def tracking_table(
    fractions: pd.DataFrame, effect: str = "device_effect", region: str = "device",
    scopes: Mapping[str, Sequence[str] | None] | None = None,
    n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
) -> pd.DataFrame:
    """Per method and scope: Spearman's rho between a map's ``region`` share and the measured
    ``effect`` across images, with a bootstrap interval (:func:`bootstrap_spearman`).

    Args:
        fractions: :attr:`ShortcutStudy.fractions`.
        scopes: scope name -> the models pooled in it (``None``: all); default
            ``{"both models": None, "shortcut model": ["shortcut"]}``. Pooled over both, rho
            rewards telling the models apart; within the shortcut model, following the
            per-image reliance.

    Returns:
        Columns ``method``, ``scope``, ``rho``, ``CI low``, ``CI high``, ``n``.
    """
    scopes = {"both models": None, "shortcut model": ["shortcut"]} if scopes is None else scopes
    out = []
    for method, rows in fractions.groupby("method", sort=False):
        for scope, models in scopes.items():
            sub = rows if models is None else rows[rows["model"].isin(models)]
            rho, low, high = bootstrap_spearman(sub[region].to_numpy(), sub[effect].to_numpy(),
                                                n_bootstrap, seed, level)
            out.append({"method": method, "scope": scope, "rho": rho, "CI low": low, "CI high": high, "n": len(sub)})
    return pd.DataFrame(out)


def classifier_table(classifiers: Mapping[str, Classifier]) -> pd.DataFrame:
    """Per model (chexp-trained, with a card): its training co-occurrence, schedule, cache key and
    held-out AUC of every finding."""
    rows = []
    for name, model in classifiers.items():
        card = model.card
        cooc = card.config["phantom"]["device_cooccurrence"]
        rows.append({
            "model": name,
            "device co-occurrence": "independent" if cooc is None else
            f"P(device | {cooc[0]}) = {cooc[1]:g}, P(device | no {cooc[0]}) = {cooc[2]:g}",
            "n_train": card.config["n_train"], "epochs": card.config["epochs"], "config": card.config_hash,
            **{f"AUC {f}": v for f, v in card.metrics["val_auc"].items()},
        })
    return pd.DataFrame(rows)


def latent_shift_table(study: ShortcutStudy) -> pd.DataFrame:
    """Per model, means over the cases: the finding's probability on the image, on its
    reconstruction ``D(E(x))`` (where Latent Shift starts) and at the lower bound (the
    counterfactual frame). A classifier that does not recognise the finding on the reconstruction
    leaves Latent Shift little to remove."""
    rows = []
    for name, expl in study.explanations.items():
        model = study.reliance[study.reliance["model"] == name]
        rows.append({
            "model": name,
            "probability on the image": float(1 / (1 + np.exp(-model["score"].to_numpy())).mean()),
            "on the reconstruction": float(expl.initial_prediction.double().mean()),
            "at the lower bound": float(expl.predictions[:, 0].double().mean()),
        })
    return pd.DataFrame(rows)


def summary_text(
    reliance_table: pd.DataFrame, reveal: pd.DataFrame, tracking: pd.DataFrame,
    latent_shift: pd.DataFrame | None = None, shortcut: str = "shortcut", clean: str = "clean",
) -> str:
    """A Markdown paragraph stating this run's results (generated from the tables, so a rerun
    updates it): the measured reliance of both models, the methods that reveal the shortcut, how
    well each tracks the per-image reliance within the shortcut model and (given
    :func:`latent_shift_table`) what Latent Shift starts from."""
    mean = reliance_table.groupby("model")[["device_effect", "finding_effect", "device_effect_probability"]].mean()
    reveals = reveal[reveal["reveals shortcut"]]["method"].tolist()
    hidden = reveal[~reveal["reveals shortcut"]]["method"].tolist()
    within = tracking[tracking["scope"] == "shortcut model"].sort_values("rho", ascending=False)
    tracked = within[within["CI low"] > 0]["method"].tolist()
    best = within.iloc[0] if len(within) else None
    lines = [
        f"**Measured reliance.** Removing the device lowers the {shortcut} model's finding logit by "
        f"{mean.loc[shortcut, 'device_effect']:.2f} on average "
        f"({mean.loc[shortcut, 'device_effect_probability']:.3f} in probability), the {clean} model's by "
        f"{mean.loc[clean, 'device_effect']:.2f} ({mean.loc[clean, 'device_effect_probability']:.3f}); removing "
        f"the finding lowers them by {mean.loc[shortcut, 'finding_effect']:.2f} and "
        f"{mean.loc[clean, 'finding_effect']:.2f}.",
        f"**Reveal the shortcut** (device share higher for the {shortcut} model, 95 % interval above 0): "
        f"{', '.join(reveals) or 'none'}; not: {', '.join(hidden) or 'none'}.",
    ]
    if best is not None:
        lines.append(
            f"**Track the reliance within the {shortcut} model** (Spearman's rho of device share and device "
            f"effect, interval above 0): {', '.join(tracked) or 'none'}; highest rho {best['rho']:.2f} "
            f"({best['method']}, [{best['CI low']:.2f}, {best['CI high']:.2f}], n = {int(best['n'])})."
        )
    if latent_shift is not None:
        ls = latent_shift.set_index("model")
        lines.append(
            f"**Latent Shift** explains the reconstruction D(E(x)): the {shortcut} model's probability of the "
            f"finding is {ls.loc[shortcut, 'probability on the image']:.2f} on the images but "
            f"{ls.loc[shortcut, 'on the reconstruction']:.3f} on their reconstructions (the {clean} model: "
            f"{ls.loc[clean, 'probability on the image']:.2f} / {ls.loc[clean, 'on the reconstruction']:.3f}). "
            "Where the autoencoder does not reproduce what the classifier uses (a thin tube, the pleural "
            "line), the shift has little to remove and its map cannot show the shortcut."
        )
    return "\n\n".join(lines)
