"""Models chexp trains on the Cohen / BrixIA radiographs (training split only), cached with provenance.

* :func:`brixia_regressor`: BrixIA global score (0-18) regression, a :class:`SmallClassifier`
  with one target and ``output="score"``; trained on the mean of the two raters' global scores
  with the loss and last layer of a :class:`~chexp.training.configs.RegressionHead` (default MSE,
  Linear + ReLU, as CheXplain-IBA).
* :func:`brixia_detectors`: the three CheXplain-IBA "detectors" (some zone scored 3 / 2 / 0-1),
  plain BCE or weighted BCE (``pos_weight = N_neg / N_pos`` per output, from the training labels);
  the training label of each detector is the mean of the two raters' labels (0, 0.5 or 1).
* :func:`cohen_autoencoder`: a :class:`ConvAutoencoder` for Latent Shift on real radiographs, with
  a configurable bottleneck (``latent_channels``), trained on every training-split image (L1).

Training uses a fixed schedule (no model selection), so both the validation and the test split
are held out; metrics are reported on each and on both pooled (``heldout``). Each model is trained
once per configuration and cached under ``$CHEXP_CACHE_DIR/models/<name>-<hash>`` through
:func:`chexp.training.cached_model`; its card holds the configuration, the manifest's sha256 and the
sha256 of the training images, the seed, the held-out metrics (with the rater-vs-rater ceiling on
the same images) and the wall time.

Data: research-only, non-commercial (per-image licences in ``data_manifests/cohen_brixia.csv``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..cohen.dataset import DETECTOR_TARGETS, CohenDataset, detector_labels
from ..cohen.manifest import MANIFEST_PATH, RATERS, global_column, load_manifest, zone_columns
from ..models.small import ConvAutoencoder, SmallClassifier
from ..models.store import ModelCard
from ..paths import cache_dir
from .autoencoder import latent_size, train_autoencoder
from .cache import cached_model, config_hash
from .classifier import bce, classifier_architecture, train_classifier
from .configs import CohenAutoencoderTraining, CohenTraining, RegressionHead
from .fit import predict

HELDOUT: tuple[str, ...] = ("val", "test")
REGRESSION_TARGET = "BrixIA global score"
#: Images per forward pass when scoring the held-out images.
PREDICT_BATCH = 64


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@dataclass
class Arrays:
    """Images and labels of one split (or several)."""

    images: torch.Tensor  # (N, 1, S, S) float32 in [-1024, 1024]
    rows: pd.DataFrame
    sha256: str  # over the image files' sha256, in order

    @property
    def zone_scores(self) -> np.ndarray:  # (N, 2, 6), raters S and J
        return np.stack([self.rows[zone_columns(r)].to_numpy(float) for r in RATERS], axis=1)

    @property
    def global_scores(self) -> np.ndarray:  # (N, 2)
        return np.stack([self.rows[global_column(r)].to_numpy(float) for r in RATERS], axis=1)

    def detector_labels(self) -> np.ndarray:  # (N, 2, 3)
        z = self.zone_scores
        return np.stack([detector_labels(z[:, k]) for k in range(len(RATERS))], axis=1)


def cached_images(dataset: CohenDataset, progress: bool = True) -> np.ndarray:
    """``dataset``'s images ``(N, 1, S, S)``, read once and cached as ``.npy`` under the cache dir.

    The file name hashes the size and every image's sha256, so it cannot go stale.
    """
    key = hashlib.sha256(
        (str(dataset.size) + "".join(dataset.rows["sha256"])).encode()
    ).hexdigest()[:16]
    path = cache_dir() / "cohen" / f"images-{dataset.size}-{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    images = dataset.load_images(progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, images, allow_pickle=False)
    tmp.replace(path)
    return images


def load_arrays(
    split: str | Sequence[str],
    size: int,
    brixia_only: bool,
    manifest: str | Path = MANIFEST_PATH,
    limit: int | None = None,
    progress: bool = True,
) -> Arrays:
    """Read (through the checked download code) the images of ``split`` at ``size``."""
    ds = CohenDataset(split, size=size, manifest=load_manifest(manifest), brixia_only=brixia_only)
    if limit is not None:
        ds.rows = ds.rows.iloc[:limit].reset_index(drop=True)
    images = torch.from_numpy(cached_images(ds, progress=progress))
    digest = hashlib.sha256("".join(ds.rows["sha256"]).encode()).hexdigest()
    return Arrays(images, ds.rows, digest)


def _train_and_heldout(cfg: CohenTraining, brixia_only: bool, progress: bool) -> tuple[Arrays, Arrays]:
    return (load_arrays("train", cfg.size, brixia_only, cfg.manifest, cfg.max_train, progress),
            load_arrays(list(HELDOUT), cfg.size, brixia_only, cfg.manifest, cfg.max_heldout, progress))


def random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``shift`` pixels (edge padding), ``(B, 1, S, S)``.

    ``generator`` is a CPU generator (the offsets, hence the result, do not depend on ``x``'s device).
    """
    if shift <= 0:
        return x
    s = x.shape[-1]
    padded = nn.functional.pad(x, (shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=generator)
    return torch.stack([padded[i, :, dy : dy + s, dx : dx + s] for i, (dy, dx) in enumerate(offsets.tolist())])


def _shifted(images: torch.Tensor, cfg: CohenTraining) -> Callable[[np.ndarray], torch.Tensor]:
    """Batch indices -> the images, randomly shifted by up to ``cfg.shift`` pixels (seeded by ``cfg.seed``)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    return lambda idx: random_shift(images[idx], cfg.shift, generator)


def _data_card(train: Arrays, held: Arrays) -> dict[str, Any]:
    return {
        "kind": "cohen-covid-chestxray + BrixIA",
        "license": "research-only, non-commercial (per-image licences in the manifest)",
        "n_train": len(train.rows), "n_heldout": len(held.rows),
        "train_images_sha256": train.sha256, "heldout_images_sha256": held.sha256,
    }


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """``np.corrcoef``'s Pearson r; NaN when either side is constant or there are fewer than 3 pairs."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """``sklearn.metrics.roc_auc_score`` of ``labels > 0.5``; NaN when only one class is present
    (older scikit-learn raises there)."""
    positive = np.asarray(labels) > 0.5
    if positive.all() or not positive.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score  # a second to import: only when a model is trained

    return float(roc_auc_score(positive, scores))


def regression_metrics(pred: np.ndarray, global_scores: np.ndarray) -> dict[str, float]:
    """MAE and Pearson r of ``pred`` (N,) against each rater, and rater J vs rater S (the ceiling).

    Args:
        pred: predicted global scores ``(N,)``.
        global_scores: the raters' global scores ``(N, 2)`` (columns S, J).
    """
    s, j = global_scores[:, 0], global_scores[:, 1]
    return {
        "n": int(len(pred)),
        "mae_S": float(np.abs(pred - s).mean()),
        "mae_J": float(np.abs(pred - j).mean()),
        "mae_mean_raters": float(np.abs(pred - (s + j) / 2).mean()),
        "r_S": _pearson(pred, s),
        "r_J": _pearson(pred, j),
        "rater_mae_J_vs_S": float(np.abs(j - s).mean()),
        "rater_r_J_vs_S": _pearson(j, s),
        "baseline_mae_S_predict_train_mean": float("nan"),
    }


def detector_metrics(prob: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """AUC of each detector against each rater's labels, and rater J's labels scored as a predictor
    of rater S's (the ceiling: for binary scores the AUC is (sensitivity + specificity) / 2).

    Args:
        prob: detector probabilities ``(N, 3)``.
        labels: the raters' labels ``(N, 2, 3)`` (raters S, J).

    AUCs are NaN where the labels hold one class only.
    """
    out: dict[str, Any] = {"n": int(len(prob))}
    for k, name in enumerate(DETECTOR_TARGETS):
        out[name] = {
            "auc_S": _auc(labels[:, 0, k], prob[:, k]),
            "auc_J": _auc(labels[:, 1, k], prob[:, k]),
            "prevalence_S": float(labels[:, 0, k].mean()),
            "rater_auc_J_vs_S": _auc(labels[:, 0, k], labels[:, 1, k]),
        }
    return out


def _by_split(rows: pd.DataFrame, metric: Callable[[np.ndarray], dict]) -> dict[str, dict]:
    """Apply ``metric(mask)`` on each held-out split and on all of them pooled."""
    masks = {split: (rows["split"] == split).to_numpy() for split in HELDOUT}
    out = {split: metric(mask) for split, mask in masks.items() if mask.any()}
    out["heldout"] = metric(np.ones(len(rows), bool))
    return out


# --------------------------------------------------------------------------------------------
# the three trainers
# --------------------------------------------------------------------------------------------
def train_brixia_regressor(
    cfg: CohenTraining, head: RegressionHead, progress: bool = True, device: str | torch.device = "cpu"
) -> tuple[SmallClassifier, ModelCard]:
    """Train the global-score regressor (``head``'s loss to the mean of both raters)."""
    start = time.perf_counter()
    train, held = _train_and_heldout(cfg, True, progress)
    y = torch.from_numpy(train.global_scores.mean(axis=1)).float().to(device)
    train_mean = float(y.mean())
    arch = classifier_architecture([REGRESSION_TARGET], "score", cfg.channels, cfg.size) | head.architecture()
    model = train_classifier(arch, _shifted(train.images.to(device), cfg), y, head.loss_function(), cfg,
                             cfg.weight_decay, bias=train_mean, desc="train BrixIA regressor", progress=progress,
                             device=device)
    pred = predict(model.logits, held.images.to(device), PREDICT_BATCH)[:, 0].cpu().numpy()
    g = held.global_scores

    def metric(mask: np.ndarray) -> dict:
        m = regression_metrics(pred[mask], g[mask])
        m["baseline_mae_S_predict_train_mean"] = float(np.abs(train_mean - g[mask, 0]).mean())
        return m

    config = {**cfg.settings(), "head": dataclasses.asdict(head)}
    card = ModelCard(
        name="cohen-brixia-regressor", architecture="SmallClassifier", arch_kwargs=arch,
        config=config, config_hash=config_hash(config),
        data=_data_card(train, held), seed=cfg.seed, metrics=_by_split(held.rows, metric),
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def train_brixia_detectors(
    cfg: CohenTraining, weighted: bool, progress: bool = True, device: str | torch.device = "cpu"
) -> tuple[SmallClassifier, ModelCard]:
    """Train the three detectors with BCE (``weighted=False``) or weighted BCE."""
    start = time.perf_counter()
    train, held = _train_and_heldout(cfg, True, progress)
    y = torch.from_numpy(train.detector_labels().mean(axis=1)).float().to(device)  # (N, 3) in {0, .5, 1}
    loss = bce(y, weighted)
    arch = classifier_architecture(DETECTOR_TARGETS, "probability", cfg.channels, cfg.size)
    model = train_classifier(arch, _shifted(train.images.to(device), cfg), y, loss, cfg, cfg.weight_decay,
                             desc=f"train BrixIA detectors ({'weighted ' if weighted else ''}BCE)",
                             progress=progress, device=device)
    prob = predict(model.probabilities, held.images.to(device), PREDICT_BATCH).cpu().numpy()
    labels = held.detector_labels()
    metrics = _by_split(held.rows, lambda m: detector_metrics(prob[m], labels[m]))
    metrics["pos_weight"] = loss.pos_weight.tolist()
    config = {**cfg.settings(), "weighted": weighted}
    card = ModelCard(
        name=_detectors_name(weighted), architecture="SmallClassifier", arch_kwargs=arch, config=config,
        config_hash=config_hash(config), data=_data_card(train, held), seed=cfg.seed,
        metrics=metrics, train_seconds=time.perf_counter() - start,
    )
    return model, card


def train_cohen_autoencoder(
    cfg: CohenAutoencoderTraining, progress: bool = True, device: str | torch.device = "cpu"
) -> tuple[ConvAutoencoder, ModelCard]:
    """Train the autoencoder (L1) on every training-split image; held-out MAE in the card."""
    start = time.perf_counter()
    train, held = _train_and_heldout(cfg, False, progress)
    model = train_autoencoder(cfg, _shifted(train.images.to(device), cfg), len(train.images), cfg.size,
                              cfg.weight_decay, desc=f"train Cohen autoencoder (latent {cfg.latent_channels} ch)",
                              progress=progress, device=device)
    x_held = held.images.to(device)
    err = predict(lambda x: (model(x) - x).abs().mean(dim=(1, 2, 3)), x_held, PREDICT_BATCH).cpu().numpy()

    def metric(mask: np.ndarray) -> dict:
        return {"n": int(mask.sum()), "mae": float(err[mask].mean()),
                "mae_fraction_of_range": float(err[mask].mean() / 2048.0)}

    metrics = {**_by_split(held.rows, metric), "latent_size": latent_size(model, x_held[:1])}
    card = ModelCard(
        name="cohen-autoencoder", architecture="ConvAutoencoder", arch_kwargs=cfg.architecture(cfg.size),
        config=cfg.settings(), config_hash=config_hash(cfg.settings()),
        data=_data_card(train, held), seed=cfg.seed, metrics=metrics,
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def _detectors_name(weighted: bool) -> str:
    return "cohen-brixia-detectors" + ("-weighted" if weighted else "")


# --------------------------------------------------------------------------------------------
# cached entry points (what notebooks and `chexp train` call): the model is trained on `device`
# the first time, returned on the CPU with its card at `model.card`
# --------------------------------------------------------------------------------------------
def brixia_regressor(
    config: CohenTraining | None = None, progress: bool = True, retrain: bool = False,
    device: str | torch.device = "cpu", head: RegressionHead | None = None,
) -> SmallClassifier:
    """The BrixIA global-score regressor (target ``"BrixIA global score"``, output ``"score"``,
    images ``(B, 1, S, S)`` in [-1024, 1024]), trained once per configuration and ``head`` (loss
    and last layer; default :class:`~chexp.training.configs.RegressionHead`: MSE, Linear + ReLU)
    and cached."""
    cfg, head = config or CohenTraining(), head or RegressionHead()
    model, card = cached_model("cohen-brixia-regressor", {**cfg.cache_key(), "head": dataclasses.asdict(head)},
                               lambda: train_brixia_regressor(cfg, head, progress, device), retrain)
    model.card = card
    return model  # type: ignore[return-value]


def brixia_detectors(
    config: CohenTraining | None = None, weighted: bool = False, progress: bool = True,
    retrain: bool = False, device: str | torch.device = "cpu",
) -> SmallClassifier:
    """The three BrixIA detectors (targets :data:`~chexp.cohen.dataset.DETECTOR_TARGETS`, output
    ``"probability"``), BCE or weighted BCE, trained once per configuration and cached."""
    cfg = config or CohenTraining()
    model, card = cached_model(_detectors_name(weighted), {**cfg.cache_key(), "weighted": weighted},
                               lambda: train_brixia_detectors(cfg, weighted, progress, device), retrain)
    model.card = card
    return model  # type: ignore[return-value]


def cohen_autoencoder(
    config: CohenAutoencoderTraining | None = None, latent_channels: int | None = None,
    progress: bool = True, retrain: bool = False, device: str | torch.device = "cpu",
) -> ConvAutoencoder:
    """The real-radiograph autoencoder (``latent_channels`` overrides the config's bottleneck),
    trained once per configuration and cached."""
    cfg = config or CohenAutoencoderTraining()
    if latent_channels is not None:
        cfg = dataclasses.replace(cfg, latent_channels=latent_channels)
    model, card = cached_model("cohen-autoencoder", cfg.cache_key(),
                               lambda: train_cohen_autoencoder(cfg, progress, device), retrain)
    model.card = card
    return model  # type: ignore[return-value]
