"""Regression IBA (CheXplain-IBA Fig. 3), sensitivity-N and the severity-map correlation.

The paper explains a DenseNet that regresses the BrixIA global score (0-18: six lung zones,
each scored 0-3). chexp has the same setting twice:

* **phantom** profile: the *phantom severity score* (:mod:`chexp.training.severity`: the six
  BrixIA zones of a phantom's lungs, each scored 0-3 by the share of it covered by lung findings)
  and its regressor :func:`chexp.training.phantom_regressor`, a
  :class:`~chexp.models.small.SmallClassifier` (one target, ``output="score"``; MSE loss and a
  Linear + ReLU head as CheXplain-IBA's regressor, :class:`~chexp.training.configs.RegressionHead`;
  trained once and cached).
* **cohen** profile: the BrixIA global-score regressor :func:`chexp.training.brixia_regressor` (the
  same loss and head), with lung masks split into zones A-F and the raters' zone scores
  (:mod:`chexp.cohen.zones`).

:data:`LOSSES` holds the three Regression IBA losses; :func:`regression_maps` computes a map per
loss; :func:`sensitivity_study` runs sensitivity-N (Fig. 3b) and :func:`severity_study` the
Pearson correlation between each map and the zone-painted severity map (paper: about 0.48 and
0.44, random maps 0.0004).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..errors import InvalidParameterError, UnknownNameError, UnsupportedProfileError
from ..iba import RegressionDeviation, RegressionIBA, RegressionMaximize, RegressionMSE, bottleneck_layers
from ..iba.losses import ModelLoss
from ..metrics import sensitivity_n, severity_correlation
from ..models.base import Classifier
from ..profiles import PhantomProfile, Profile
from ..training import (
    CohenTraining,
    PhantomRegressionTraining,
    brixia_regressor,
    phantom_regressor,
    phantom_training_images,
)
from ..training.severity import zone_scores
from .batches import ImageBatch, map_batches, split_images
from .iba_setup import DEFAULT_STATISTICS_IMAGES, Setup, make_setup, training_images

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "LOSSES",
    "TRAINED_BY_PAPER",
    "RegressionCases",
    "predictions",
    "random_maps",
    "regression_cases",
    "regression_maps",
    "regression_setup",
    "sensitivity_study",
    "severity_maps",
    "severity_study",
]

#: Why the ``paper`` profile runs this part on its stand-in (:func:`~.iba_setup.brixia_stand_in`).
TRAINED_BY_PAPER = (
    "CheXplain-IBA trained its own BrixIA severity regressor (DenseNet121, MSE on the global score 0-18) on "
    "the BrixIA data set (4,703 radiographs, released under a data agreement); neither the model nor those "
    "images can be obtained here."
)


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


def _phantom_cases(profile: Profile, n: int | None, seed: int, min_score: float) -> RegressionCases:
    if n is None:
        raise InvalidParameterError("the phantom profile draws new phantoms without end: give n, a number of cases")
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
        "held-out phantoms; zone scores from the finding masks (chexp.training.severity.zone_scores)",
    )


def _cohen_cases(profile: Profile, n: int | None, seed: int, min_score: float) -> RegressionCases:
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


CASES: dict[str, Callable[[Profile, int | None, int, float], RegressionCases]] = {
    "phantom": _phantom_cases, "cohen": _cohen_cases,
}


def regression_cases(profile: Profile, n: int | None, seed: int = 0, min_score: float = 1.0) -> RegressionCases:
    """``n`` held-out images (global score >= ``min_score``) with zones and zone scores; ``None``:
    all of them (cohen: every held-out BrixIA-scored image with a lung mask; not for phantoms,
    which never run out).

    The ``paper`` profile has no BrixIA scores: use its stand-in,
    :func:`~chexp.experiments.iba_setup.brixia_stand_in`.
    """
    if profile.name not in CASES:
        raise UnsupportedProfileError(
            f"profile {profile.name!r} has no zone severity scores (BrixIA); use 'phantom' or 'cohen'"
        )
    return CASES[profile.name](profile, n, seed, min_score)


def _regressor(profile: Profile) -> tuple[Classifier, Callable[[int], torch.Tensor]]:
    if isinstance(profile, PhantomProfile):
        cfg = PhantomRegressionTraining(phantom=profile.phantom)
        regressor = phantom_regressor(cfg, progress=False, device=profile.train_device)
        return regressor, phantom_training_images(cfg.phantom, cfg.seed)
    if profile.name == "cohen":
        regressor = brixia_regressor(CohenTraining(size=int(getattr(profile, "size", 128))), progress=False,
                                     device=profile.train_device)
        return regressor, training_images(profile)
    raise UnsupportedProfileError(f"profile {profile.name!r} has no severity regressor; use 'phantom' or 'cohen'")


def regression_setup(
    profile: Profile, device: str | torch.device = "cpu", layer: str | None = None,
    n_statistics: int = DEFAULT_STATISTICS_IMAGES, iba_settings: Mapping[str, Any] | None = None,
) -> Setup:
    """A :class:`~chexp.experiments.iba_setup.Setup` around the profile's severity regressor
    (statistics fitted on its training images and cached beside it); ``layer=None``: the IBA
    layer of the regressor's family (:func:`chexp.iba.bottleneck_layers`)."""
    model, images = _regressor(profile)
    layer = bottleneck_layers(model).layer if layer is None else layer
    return make_setup(profile, model, device, layer, (layer,), n_statistics, images, iba_settings)


#: Regression IBA loss name -> ``cases -> loss object`` (paper section 2.2).
LOSSES: dict[str, Callable[[RegressionCases], ModelLoss]] = {
    "MSE": lambda c: RegressionMSE(torch.as_tensor(c.global_scores, dtype=torch.float32)),
    "Regression maximization": lambda c: RegressionMaximize(),
    "Deviation": lambda c: RegressionDeviation(),
}


def regression_maps(
    setup: Setup, cases: RegressionCases, losses: Sequence[str] = tuple(LOSSES)
) -> dict[str, torch.Tensor]:
    """Regression IBA maps ``(N, 1, S, S)`` (bits per pixel, CPU) per loss name."""
    for name in losses:
        if name not in LOSSES:
            raise UnknownNameError(name, LOSSES, "Regression IBA loss")
    method = RegressionIBA(setup.classifier, setup.layer, setup.statistics[setup.layer], **setup.iba_settings)
    x = cases.images.to(setup.device)
    return {name: method.attribute(x, LOSSES[name](cases)).cpu() for name in losses}


def severity_maps(cases: RegressionCases) -> torch.Tensor:
    """The zone-painted severity maps ``(N, 1, S, S)`` (0 outside the lungs)."""
    from ..metrics import severity_map

    return torch.stack([severity_map(z, s) for z, s in zip(cases.zones, cases.scores, strict=True)])[:, None].float()


def random_maps(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Uniform random maps of the same shape (the paper's random-heatmap baseline)."""
    return torch.rand(like.shape, generator=torch.Generator().manual_seed(seed))


def predictions(setup: Setup, cases: RegressionCases) -> np.ndarray:
    """The regressor's scores ``(N,)`` for the cases."""
    with torch.no_grad():
        return setup.classifier(cases.images.to(setup.device))[:, 0].cpu().numpy()


def sensitivity_study(
    setup: Setup, cases: RegressionCases, maps: Mapping[str, torch.Tensor], points: int = 20,
    n_masks: int = 20, seed: int = 0, progress: bool = True, batch_size: int | None = None,
    client: Client | None = None,
) -> pd.DataFrame:
    """Sensitivity-N (zero baseline) per map kind: long table ``map``, ``n``, ``correlation``
    (mean Pearson over images), ``std``.

    Mask sizes: ``points`` of the released code's sizes scaled to the image
    (:func:`~chexp.metrics.perturbation.default_sensitivity_ns`; paper: 50 sizes, 30 masks each).
    The masks are the same for every image (``seed``), so ``batch_size`` (images per batch;
    ``None``: all) only splits the work; ``client``: each (map kind, batch) a Dask task on its
    workers (the setup sent to each worker once; :func:`~.batches.map_batches`), the same table.
    """
    from ..metrics.perturbation import default_sensitivity_ns

    ns = default_sensitivity_ns(cases.images[0].numel(), points=points)
    batches = [b for name, m in maps.items()
               for b in split_images((name,), cases.images, list(cases.ids), batch_size, maps=m)]
    parts = map_batches(_sensitivity_batch, batches, (setup, ns, n_masks, seed), client, "sensitivity-N", progress)
    rows = []
    for name in maps:
        corr = np.concatenate([c for b, c in zip(batches, parts, strict=True) if b.key[0] == name])
        for j, n in enumerate(ns):
            col = corr[:, j]
            rows.append({"map": name, "n": int(n), "correlation": float(np.nanmean(col)),
                         "std": float(np.nanstd(col)), "images": int(np.isfinite(col).sum())})
    return pd.DataFrame(rows)


def _sensitivity_batch(work: tuple[Setup, np.ndarray, int, int], batch: ImageBatch) -> np.ndarray:
    """Sensitivity-N correlations ``(B, K)`` of one batch of one map kind (``batch.maps``)."""
    setup, ns, n_masks, seed = work
    assert batch.maps is not None
    return sensitivity_n(setup.classifier, batch.images.to(setup.device), batch.maps.to(setup.device),
                         setup.classifier.targets[0], ns=ns, n_masks=n_masks, seed=seed, progress=False).correlation


def severity_study(cases: RegressionCases, maps: Mapping[str, torch.Tensor]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson correlation of each map with the zone-painted severity map (whole image, pixels
    outside the lungs painted 0, as in the paper).

    Returns ``(summary, per_image)``: summary rows ``map``, ``mean r``, ``std``, ``n``.
    """
    per = {name: severity_correlation(m, cases.zones, cases.scores).numpy() for name, m in maps.items()}
    per_image = pd.DataFrame({"image": cases.ids, "global score": cases.global_scores, **per})
    summary = pd.DataFrame([
        {"map": name, "mean r": float(np.nanmean(v)),
         "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else float("nan"),
         "n": int(np.isfinite(v).sum())}
        for name, v in per.items()
    ])
    return summary, per_image
