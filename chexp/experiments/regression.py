"""Regression IBA (CheXplain-IBA Fig. 3), sensitivity-N and the severity-map correlation.

The paper explains a DenseNet that regresses the BrixIA global score (0-18: six lung zones,
each scored 0-3). chexp has the same setting twice:

* **phantom** profile: a *phantom severity score* with a known spatial support. The lungs of
  a phantom are cut into the six BrixIA zones (:func:`chexp.metrics.severity.brixia_zones`);
  each zone is scored 0-3 by the share of it covered by lung findings (Effusion, Mass,
  Pneumothorax): below 2 % -> 0, below 15 % -> 1, below 40 % -> 2, else 3 (:func:`zone_scores`).
  The global score is their sum. :func:`phantom_regressor` is a
  :class:`~chexp.models.small.SmallClassifier` (one target, ``output="score"``) trained on it
  through :func:`chexp.training.cached_model` (about a minute of CPU, once).
* **cohen** profile: the BrixIA global-score regressor of :mod:`chexp.cohen.train`, with lung
  masks split into zones A-F and the raters' zone scores (:mod:`chexp.cohen.zones`).

:data:`LOSSES` holds the three Regression IBA losses; :func:`regression_maps` computes a map per
loss; :func:`sensitivity_study` runs sensitivity-N (Fig. 3b) and :func:`severity_study` the
Pearson correlation between each map and the zone-painted severity map (paper: about 0.48 and
0.44, random maps 0.0004).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..iba import RegressionDeviation, RegressionIBA, RegressionMaximize, RegressionMSE
from ..iba.losses import ModelLoss
from ..metrics import sensitivity_n, severity_correlation
from ..metrics.severity import brixia_zones
from ..models.base import Classifier
from ..models.small import SmallClassifier
from ..models.store import ModelCard
from ..phantoms import FINDINGS, PhantomConfig, generate
from ..profiles import PhantomProfile, Profile
from ..progress import tqdm
from ..training import (
    VALIDATION_SEED_OFFSET,
    cached_model,
    config_dict,
    config_hash,
    fit,
    generator_fingerprint,
)
from .chexplain import (
    DEFAULT_LAYER,
    DEFAULT_STATISTICS_IMAGES,
    Setup,
    UnsupportedProfileError,
    make_setup,
    training_images,
)
from .ci_training import phantom_training_images

__all__ = [
    "LOSSES",
    "SCORE_NAME",
    "SEVERITY_FINDINGS",
    "ZONE_THRESHOLDS",
    "PhantomRegressionTraining",
    "RegressionCases",
    "phantom_regressor",
    "predictions",
    "random_maps",
    "regression_cases",
    "regression_maps",
    "regression_setup",
    "sensitivity_study",
    "severity_maps",
    "severity_study",
    "zone_scores",
]

#: Phantom findings that count towards the severity score (lung opacities / air; not the heart
#: or devices).
SEVERITY_FINDINGS: tuple[str, ...] = ("Effusion", "Mass", "Pneumothorax")
#: Zone share thresholds between scores 0|1, 1|2 and 2|3.
ZONE_THRESHOLDS: tuple[float, float, float] = (0.02, 0.15, 0.40)
SCORE_NAME = "Phantom severity score"


def zone_scores(
    lungs: np.ndarray, masks: np.ndarray, thresholds: Sequence[float] = ZONE_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """BrixIA-like zones and zone scores of phantoms.

    Args:
        lungs: bool ``(N, S, S)`` lung fields.
        masks: bool ``(N, 5, S, S)`` finding masks (columns :data:`chexp.phantoms.FINDINGS`).
        thresholds: zone-share cut points (three, increasing).

    Returns:
        ``zones`` bool ``(N, 6, S, S)`` (A-C image left, D-F image right, top to bottom) and
        ``scores`` float32 ``(N, 6)`` in {0, 1, 2, 3}.
    """
    lungs, masks = np.asarray(lungs, bool), np.asarray(masks, bool)
    if lungs.ndim != 3 or masks.ndim != 4 or masks.shape[0] != lungs.shape[0] or masks.shape[-2:] != lungs.shape[-2:]:
        raise ValueError(f"lungs must be (N, S, S) and masks (N, 5, S, S), got {lungs.shape} and {masks.shape}")
    if len(thresholds) != 3 or list(thresholds) != sorted(thresholds):
        raise ValueError(f"thresholds must be three increasing shares, got {thresholds}")
    cols = [FINDINGS.index(f) for f in SEVERITY_FINDINGS]
    involved = masks[:, cols].any(axis=1)
    zones = np.stack([brixia_zones(lung).numpy() for lung in lungs])  # (N, 6, S, S)
    area = zones.sum(axis=(2, 3))
    share = (zones & involved[:, None]).sum(axis=(2, 3)) / np.maximum(area, 1)
    return zones, np.digitize(share, thresholds).astype(np.float32)


@dataclass(frozen=True)
class PhantomRegressionTraining:
    """Settings of :func:`phantom_regressor` (all enter the cache hash)."""

    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    n_train: int = 1200
    n_val: int = 300
    epochs: int = 4
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    channels: tuple[int, ...] = (16, 16, 32, 64, 64)
    thresholds: tuple[float, float, float] = ZONE_THRESHOLDS


def train_phantom_regressor(cfg: PhantomRegressionTraining, progress: bool = True) -> tuple[SmallClassifier, ModelCard]:
    """Train the phantom severity regressor (L1 loss); held-out MAE and Pearson r in the card."""
    start = time.perf_counter()
    train = generate(cfg.n_train, seed=cfg.seed, config=cfg.phantom)
    val = generate(cfg.n_val, seed=cfg.seed + VALIDATION_SEED_OFFSET, config=cfg.phantom)
    x = torch.from_numpy(train.images)
    y = torch.from_numpy(zone_scores(train.lungs, train.masks, cfg.thresholds)[1].sum(1))
    y_val = zone_scores(val.lungs, val.masks, cfg.thresholds)[1].sum(1)
    arch = {"targets": [SCORE_NAME], "output": "score", "channels": list(cfg.channels), "input_size": cfg.phantom.size}
    torch.manual_seed(cfg.seed)
    model = SmallClassifier(**arch)
    with torch.no_grad():  # start at the mean score: the network learns the deviation
        model.classifier.bias.fill_(float(y.mean()))
    fit(model, lambda idx: (model.logits(x[idx])[:, 0] - y[idx]).abs().mean(), len(x), epochs=cfg.epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=1e-4, seed=cfg.seed,
        desc="train phantom severity regressor", progress=progress)
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(val.images[i : i + 256])) for i in range(0, cfg.n_val, 256)])[:, 0].numpy()
    card = ModelCard(
        name="phantom-severity-regressor", architecture="SmallClassifier", arch_kwargs=arch,
        config=config_dict(cfg), config_hash=config_hash(config_dict(cfg)),
        data={"kind": "phantom", "train_sha256": train.sha256(), "val_sha256": val.sha256(),
              "n_train": cfg.n_train, "n_val": cfg.n_val, "score": "sum of six zone scores 0-3 (0-18)"},
        seed=cfg.seed,
        metrics={"val_mae": float(np.abs(pred - y_val).mean()),
                 "val_mae_predict_train_mean": float(np.abs(float(y.mean()) - y_val).mean()),
                 "val_pearson": float(np.corrcoef(pred, y_val)[0, 1])},
        train_seconds=time.perf_counter() - start,
    )
    return model.eval(), card


def phantom_regressor(
    config: PhantomRegressionTraining | None = None, progress: bool = True, retrain: bool = False
) -> SmallClassifier:
    """The phantom severity regressor (target :data:`SCORE_NAME`, output ``"score"``), cached."""
    cfg = config or PhantomRegressionTraining()
    key = config_dict(cfg) | {"generator": generator_fingerprint(cfg.phantom)}
    model, card = cached_model("phantom-severity-regressor", key, lambda: train_phantom_regressor(cfg, progress), retrain)
    model.card = card
    return model  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# cases: images with zones and zone scores
# --------------------------------------------------------------------------------------------
@dataclass
class RegressionCases:
    """Held-out images with lung zones and zone scores.

    Attributes:
        images: ``(N, 1, S, S)`` in [-1024, 1024].
        zones: bool ``(N, 6, S, S)``, zones A-F.
        scores: float ``(N, 6)`` zone scores (cohen: mean of the two raters).
        ids: one name per image.
        source: a sentence naming the data.
    """

    images: torch.Tensor
    zones: np.ndarray
    scores: np.ndarray
    ids: list[str]
    source: str = ""

    @property
    def global_scores(self) -> np.ndarray:
        return self.scores.sum(1)

    def __len__(self) -> int:
        return len(self.images)


def _phantom_cases(profile: Profile, n: int, seed: int, min_score: float) -> RegressionCases:
    chunks: list[tuple] = []
    found, s = 0, seed
    while found < n:
        sample = profile.samples(max(2 * n, 8), seed=s)
        s += 1
        ps = sample.extra["phantoms"]
        zones, scores = zone_scores(ps.lungs, ps.masks)
        keep = np.flatnonzero(scores.sum(1) >= min_score)[: n - found]
        chunks.append((sample.images[keep], zones[keep], scores[keep], [sample.ids[i] + f"/s{s - 1}" for i in keep]))
        found += len(keep)
        if s - seed > 50:
            raise UnsupportedProfileError(f"fewer than {n} phantoms with a severity score >= {min_score}")
    return RegressionCases(
        torch.cat([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks]),
        np.concatenate([c[2] for c in chunks]), [i for c in chunks for i in c[3]],
        "held-out phantoms; zone scores from the finding masks (chexp.experiments.regression.zone_scores)",
    )


def _cohen_cases(profile: Profile, n: int, seed: int, min_score: float) -> RegressionCases:
    from ..cohen.dataset import CohenDataset

    size = int(getattr(profile, "size", 128))
    ds = CohenDataset(["val", "test"], size=size, brixia_only=True, with_masks=True)
    rows = np.flatnonzero((ds.rows["lung_mask_source"].fillna("") != "").to_numpy())
    rows = rows[np.nanmean(ds.zone_scores[rows], axis=1).sum(1) >= min_score]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(rows)[:n])
    items = [ds[int(i)] for i in rows]
    return RegressionCases(
        torch.stack([it["image"] for it in items]),
        np.stack([it["zones"].numpy() for it in items]),
        np.stack([np.nanmean(it["zone_scores"].numpy(), axis=0) for it in items]),
        [str(ds.rows.iloc[int(i)]["filename"]) for i in rows],
        "Cohen COVID-19 collection, BrixIA zone scores (mean of raters S and J), held-out split; "
        "research-only, non-commercial",
    )


CASES: dict[str, Callable[[Profile, int, int, float], RegressionCases]] = {"phantom": _phantom_cases, "cohen": _cohen_cases}


def regression_cases(profile: Profile, n: int, seed: int = 0, min_score: float = 1.0) -> RegressionCases:
    """``n`` held-out images (global score >= ``min_score``) with zones and zone scores."""
    if profile.name not in CASES:
        raise UnsupportedProfileError(
            f"profile {profile.name!r} has no zone severity scores (BrixIA); use 'phantom' or 'cohen'"
        )
    return CASES[profile.name](profile, n, seed, min_score)


def _regressor(profile: Profile) -> tuple[Classifier, Callable[[int], torch.Tensor]]:
    if isinstance(profile, PhantomProfile):
        cfg = PhantomRegressionTraining(phantom=profile.phantom)
        return phantom_regressor(cfg, progress=False), phantom_training_images(cfg.phantom, cfg.seed)
    if profile.name == "cohen":
        from ..cohen.train import CohenTraining, brixia_regressor

        return brixia_regressor(CohenTraining(size=int(getattr(profile, "size", 128))), progress=False), training_images(profile)
    raise UnsupportedProfileError(f"profile {profile.name!r} has no severity regressor; use 'phantom' or 'cohen'")


def regression_setup(
    profile: Profile, device: str | torch.device = "cpu", layer: str = DEFAULT_LAYER,
    n_statistics: int = DEFAULT_STATISTICS_IMAGES, iba_settings: Mapping[str, Any] | None = None,
) -> Setup:
    """A :class:`~chexp.experiments.chexplain.Setup` around the profile's severity regressor
    (statistics fitted on its training images and cached beside it)."""
    model, images = _regressor(profile)
    return make_setup(profile, model, device, layer, (layer,), n_statistics, images, iba_settings)


#: Regression IBA loss name -> ``cases -> loss object`` (paper section 2.2).
LOSSES: dict[str, Callable[[RegressionCases], ModelLoss]] = {
    "MSE": lambda c: RegressionMSE(torch.as_tensor(c.global_scores, dtype=torch.float32)),
    "Regression maximization": lambda c: RegressionMaximize(),
    "Deviation": lambda c: RegressionDeviation(),
}


def regression_maps(setup: Setup, cases: RegressionCases, losses: Sequence[str] = tuple(LOSSES)) -> dict[str, torch.Tensor]:
    """Regression IBA maps ``(N, 1, S, S)`` (bits per pixel, CPU) per loss name."""
    for name in losses:
        if name not in LOSSES:
            from ..errors import UnknownNameError

            raise UnknownNameError(name, LOSSES, "Regression IBA loss")
    method = RegressionIBA(setup.classifier, setup.layer, setup.statistics[setup.layer], **setup.iba_settings)
    x = cases.images.to(setup.device)
    return {name: method.attribute(x, LOSSES[name](cases)).cpu() for name in losses}


def severity_maps(cases: RegressionCases) -> torch.Tensor:
    """The zone-painted severity maps ``(N, 1, S, S)`` (0 outside the lungs)."""
    from ..metrics import severity_map

    return torch.stack([severity_map(z, s) for z, s in zip(cases.zones, cases.scores)])[:, None].float()


def random_maps(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Uniform random maps of the same shape (the paper's random-heatmap baseline)."""
    return torch.rand(like.shape, generator=torch.Generator().manual_seed(seed))


def predictions(setup: Setup, cases: RegressionCases) -> np.ndarray:
    """The regressor's scores ``(N,)`` for the cases."""
    with torch.no_grad():
        return setup.classifier(cases.images.to(setup.device))[:, 0].cpu().numpy()


def sensitivity_study(
    setup: Setup, cases: RegressionCases, maps: Mapping[str, torch.Tensor], points: int = 20,
    n_masks: int = 20, seed: int = 0, progress: bool = True,
) -> pd.DataFrame:
    """Sensitivity-N (zero baseline) per map kind: long table ``map``, ``n``, ``correlation``
    (mean Pearson over images), ``std``.

    Mask sizes: ``points`` values of ``logspace(0, 4.7)`` below the pixel count (paper: 50 sizes,
    30 masks each).
    """
    from ..metrics.perturbation import default_sensitivity_ns

    x = cases.images.to(setup.device)
    ns = default_sensitivity_ns(x[0].numel(), points=points)
    target = setup.classifier.targets[0]
    rows = []
    for name, m in tqdm(maps.items(), desc="sensitivity-N", disable=not progress):
        r = sensitivity_n(setup.classifier, x, m.to(setup.device), target, ns=ns, n_masks=n_masks, seed=seed, progress=False)
        for j, n in enumerate(r.ns):
            col = r.correlation[:, j]
            rows.append({"map": name, "n": int(n), "correlation": float(np.nanmean(col)),
                         "std": float(np.nanstd(col)), "images": int(np.isfinite(col).sum())})
    return pd.DataFrame(rows)


def severity_study(cases: RegressionCases, maps: Mapping[str, torch.Tensor]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson correlation of each map with the zone-painted severity map (whole image, pixels
    outside the lungs painted 0, as in the paper).

    Returns ``(summary, per_image)``: summary rows ``map``, ``mean r``, ``std``, ``n``.
    """
    per = {name: severity_correlation(m, cases.zones, cases.scores).numpy() for name, m in maps.items()}
    per_image = pd.DataFrame({"image": cases.ids, "global score": cases.global_scores, **per})
    summary = pd.DataFrame([
        {"map": name, "mean r": float(np.nanmean(v)), "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else float("nan"),
         "n": int(np.isfinite(v).sum())}
        for name, v in per.items()
    ])
    return summary, per_image
