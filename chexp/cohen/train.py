"""Models chexp trains on the Cohen / BrixIA radiographs (training split only), cached with provenance.

* :func:`brixia_regressor`: BrixIA global score (0-18) regression, a :class:`SmallClassifier`
  with one target and ``output="score"``; trained on the mean of the two raters' global scores.
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
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from ..data.remote import sha256_of
from ..models.small import ConvAutoencoder, SmallClassifier
from ..models.store import ModelCard
from ..paths import cache_dir
from ..training import cached_model, config_hash, fit
from .dataset import DETECTOR_TARGETS, CohenDataset, detector_labels
from .manifest import MANIFEST_PATH, RATERS, global_column, load_manifest, zone_columns

HELDOUT: tuple[str, ...] = ("val", "test")
REGRESSION_TARGET = "BrixIA global score"


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CohenTraining:
    """Settings of a real-data model (all of them enter the cache hash).

    Attributes:
        size: image side (128 or 224 are CPU-feasible; sides must be multiples of 16).
        epochs, batch_size, lr, weight_decay: the AdamW + one-cycle schedule.
        seed: seed of initialisation, batch order and augmentation.
        channels: :class:`SmallClassifier` block widths (classifiers and regressor).
        shift: random translation augmentation, in pixels (0: none).
        max_train: use only the first ``max_train`` training images (``None``: all); for tests.
        max_heldout: evaluate on only the first ``max_heldout`` held-out images; for tests.
        manifest: path of the manifest CSV (its sha256 enters the hash).
    """

    size: int = 128
    epochs: int = 30
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-3
    seed: int = 0
    channels: tuple[int, ...] = (16, 32, 64, 128)
    shift: int = 8
    max_train: int | None = None
    max_heldout: int | None = None
    manifest: str = str(MANIFEST_PATH)


@dataclass(frozen=True)
class AutoencoderTraining(CohenTraining):
    """Settings of :func:`cohen_autoencoder` (adds the bottleneck).

    ``latent_channels x (size / 2**depth)**2`` is the bottleneck size (8 x 8 x 8 = 512 at 128).
    """

    epochs: int = 20
    lr: float = 2e-3
    weight_decay: float = 1e-5
    shift: int = 0
    latent_channels: int = 8
    width: int = 32
    depth: int = 4


def _config_dict(cfg: Any) -> dict[str, Any]:
    d = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    d["manifest_sha256"] = sha256_of(d.pop("manifest"))  # the content, not where it lies
    return d


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


def random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``shift`` pixels (edge padding), ``(B, 1, S, S)``."""
    if shift <= 0:
        return x
    s = x.shape[-1]
    padded = nn.functional.pad(x, (shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=generator)
    return torch.stack([padded[i, :, dy : dy + s, dx : dx + s] for i, (dy, dx) in enumerate(offsets.tolist())])


def _predict(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(images[i : i + batch]) for i in range(0, len(images), batch)])


def _fit(
    model: nn.Module,
    loss_of_batch: Callable[[torch.Tensor, np.ndarray], torch.Tensor],
    images: torch.Tensor,
    cfg: CohenTraining,
    desc: str,
    progress: bool,
) -> None:
    """:func:`chexp.training.fit` with seeded shift augmentation of the radiographs."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    fit(model, lambda idx: loss_of_batch(random_shift(images[idx], cfg.shift, gen), idx), len(images),
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
        seed=cfg.seed, desc=desc, progress=progress)


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r (NaN when either side is constant or fewer than 3 pairs)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (NaN when only one class is present)."""
    labels = np.asarray(labels) > 0.5
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def regression_metrics(pred: np.ndarray, global_scores: np.ndarray) -> dict[str, float]:
    """MAE and Pearson r of ``pred`` (N,) against each rater, and rater J vs rater S (the ceiling)."""
    s, j = global_scores[:, 0], global_scores[:, 1]
    return {
        "n": int(len(pred)),
        "mae_S": float(np.abs(pred - s).mean()),
        "mae_J": float(np.abs(pred - j).mean()),
        "mae_mean_raters": float(np.abs(pred - (s + j) / 2).mean()),
        "r_S": pearson(pred, s),
        "r_J": pearson(pred, j),
        "rater_mae_J_vs_S": float(np.abs(j - s).mean()),
        "rater_r_J_vs_S": pearson(j, s),
        "baseline_mae_S_predict_train_mean": float("nan"),
    }


def detector_metrics(prob: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """AUC of each detector against each rater's labels, and rater J's labels scored as a predictor
    of rater S's (the ceiling: for binary scores the AUC is (sensitivity + specificity) / 2)."""
    out: dict[str, Any] = {"n": int(len(prob))}
    for k, name in enumerate(DETECTOR_TARGETS):
        out[name] = {
            "auc_S": auc(labels[:, 0, k], prob[:, k]),
            "auc_J": auc(labels[:, 1, k], prob[:, k]),
            "prevalence_S": float(labels[:, 0, k].mean()),
            "rater_auc_J_vs_S": auc(labels[:, 0, k], labels[:, 1, k]),
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
def train_brixia_regressor(cfg: CohenTraining, progress: bool = True) -> tuple[SmallClassifier, ModelCard]:
    """Train the global-score regressor (L1 loss to the mean of both raters)."""
    start = time.perf_counter()
    train = load_arrays("train", cfg.size, True, cfg.manifest, cfg.max_train, progress)
    held = load_arrays(list(HELDOUT), cfg.size, True, cfg.manifest, cfg.max_heldout, progress)
    y = torch.from_numpy(train.global_scores.mean(axis=1)).float()
    arch = {"targets": [REGRESSION_TARGET], "output": "score", "channels": list(cfg.channels),
            "input_size": cfg.size}
    torch.manual_seed(cfg.seed)
    model = SmallClassifier(**arch)
    with torch.no_grad():  # start at the training mean: the network learns the deviation
        model.classifier.bias.fill_(float(y.mean()))
    _fit(model, lambda x, idx: (model.logits(x)[:, 0] - y[idx]).abs().mean(), train.images, cfg,
         "train BrixIA regressor", progress)
    pred = _predict(model.logits, held.images)[:, 0].numpy()
    g = held.global_scores
    train_mean = float(y.mean())

    def metric(mask: np.ndarray) -> dict:
        m = regression_metrics(pred[mask], g[mask])
        m["baseline_mae_S_predict_train_mean"] = float(np.abs(train_mean - g[mask, 0]).mean())
        return m

    card = ModelCard(
        name="cohen-brixia-regressor", architecture="SmallClassifier", arch_kwargs=arch,
        config=_config_dict(cfg), config_hash=config_hash(_config_dict(cfg)),
        data=_data_card(train, held), seed=cfg.seed, metrics=_by_split(held.rows, metric),
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def train_brixia_detectors(
    cfg: CohenTraining, weighted: bool, progress: bool = True
) -> tuple[SmallClassifier, ModelCard]:
    """Train the three detectors with BCE (``weighted=False``) or weighted BCE."""
    start = time.perf_counter()
    train = load_arrays("train", cfg.size, True, cfg.manifest, cfg.max_train, progress)
    held = load_arrays(list(HELDOUT), cfg.size, True, cfg.manifest, cfg.max_heldout, progress)
    y = torch.from_numpy(train.detector_labels().mean(axis=1)).float()  # (N, 3) in {0, .5, 1}
    n_pos, n_neg = y.sum(0), (1 - y).sum(0)
    # N_neg / N_pos; a detector whose training labels are all one class keeps weight 1
    defined = (n_pos > 0) & (n_neg > 0)
    pos_weight = torch.where(defined, n_neg / n_pos.clamp(min=1e-6), torch.ones(3))
    if not weighted:
        pos_weight = torch.ones(3)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    arch = {"targets": list(DETECTOR_TARGETS), "output": "probability",
            "channels": list(cfg.channels), "input_size": cfg.size}
    torch.manual_seed(cfg.seed)
    model = SmallClassifier(**arch)
    _fit(model, lambda x, idx: loss_fn(model.logits(x), y[idx]), train.images, cfg,
         f"train BrixIA detectors ({'weighted ' if weighted else ''}BCE)", progress)
    prob = _predict(model.probabilities, held.images).numpy()
    labels = held.detector_labels()
    metrics = _by_split(held.rows, lambda m: detector_metrics(prob[m], labels[m]))
    metrics["pos_weight"] = pos_weight.tolist()
    name = "cohen-brixia-detectors" + ("-weighted" if weighted else "")
    config = {**_config_dict(cfg), "weighted": weighted}
    card = ModelCard(
        name=name, architecture="SmallClassifier", arch_kwargs=arch, config=config,
        config_hash=config_hash(config), data=_data_card(train, held), seed=cfg.seed,
        metrics=metrics, train_seconds=time.perf_counter() - start,
    )
    return model, card


def train_cohen_autoencoder(cfg: AutoencoderTraining, progress: bool = True) -> tuple[ConvAutoencoder, ModelCard]:
    """Train the autoencoder (L1) on every training-split image; held-out MAE in the card."""
    start = time.perf_counter()
    train = load_arrays("train", cfg.size, False, cfg.manifest, cfg.max_train, progress)
    held = load_arrays(list(HELDOUT), cfg.size, False, cfg.manifest, cfg.max_heldout, progress)
    arch = {"latent_channels": cfg.latent_channels, "width": cfg.width, "depth": cfg.depth,
            "input_size": cfg.size}
    torch.manual_seed(cfg.seed)
    model = ConvAutoencoder(**arch)
    _fit(model, lambda x, idx: (model(x) - x).abs().mean() / 1024.0, train.images, cfg,
         f"train Cohen autoencoder (latent {cfg.latent_channels} ch)", progress)
    err = _predict(lambda x: (model(x) - x).abs().mean(dim=(1, 2, 3)), held.images).numpy()
    latent = int(np.prod(model.encode(held.images[:1]).shape[1:]))

    def metric(mask: np.ndarray) -> dict:
        return {"n": int(mask.sum()), "mae": float(err[mask].mean()),
                "mae_fraction_of_range": float(err[mask].mean() / 2048.0)}

    metrics = {**_by_split(held.rows, metric), "latent_size": latent}
    card = ModelCard(
        name="cohen-autoencoder", architecture="ConvAutoencoder", arch_kwargs=arch,
        config=_config_dict(cfg), config_hash=config_hash(_config_dict(cfg)),
        data=_data_card(train, held), seed=cfg.seed, metrics=metrics,
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def _data_card(train: Arrays, held: Arrays) -> dict[str, Any]:
    return {
        "kind": "cohen-covid-chestxray + BrixIA",
        "license": "research-only, non-commercial (per-image licences in the manifest)",
        "n_train": len(train.rows), "n_heldout": len(held.rows),
        "train_images_sha256": train.sha256, "heldout_images_sha256": held.sha256,
    }


# --------------------------------------------------------------------------------------------
# cached entry points (what notebooks and `chexp train` call)
# --------------------------------------------------------------------------------------------
def brixia_regressor(
    config: CohenTraining | None = None, progress: bool = True, retrain: bool = False
) -> SmallClassifier:
    """The BrixIA global-score regressor (target ``"BrixIA global score"``, output ``"score"``,
    images ``(B, 1, S, S)`` in [-1024, 1024]), trained once per configuration and cached."""
    cfg = config or CohenTraining()
    model, card = cached_model("cohen-brixia-regressor", _config_dict(cfg),
                               lambda: train_brixia_regressor(cfg, progress), retrain)
    model.card = card
    return model  # type: ignore[return-value]


def brixia_detectors(
    config: CohenTraining | None = None, weighted: bool = False, progress: bool = True,
    retrain: bool = False,
) -> SmallClassifier:
    """The three BrixIA detectors (targets :data:`DETECTOR_TARGETS`, output ``"probability"``),
    BCE or weighted BCE, trained once per configuration and cached."""
    cfg = config or CohenTraining()
    name = "cohen-brixia-detectors" + ("-weighted" if weighted else "")
    model, card = cached_model(name, {**_config_dict(cfg), "weighted": weighted},
                               lambda: train_brixia_detectors(cfg, weighted, progress), retrain)
    model.card = card
    return model  # type: ignore[return-value]


def cohen_autoencoder(
    config: AutoencoderTraining | None = None, latent_channels: int | None = None,
    progress: bool = True, retrain: bool = False,
) -> ConvAutoencoder:
    """The real-radiograph autoencoder (``latent_channels`` overrides the config's bottleneck),
    trained once per configuration and cached."""
    cfg = config or AutoencoderTraining()
    if latent_channels is not None:
        cfg = dataclasses.replace(cfg, latent_channels=latent_channels)
    model, card = cached_model("cohen-autoencoder", _config_dict(cfg),
                               lambda: train_cohen_autoencoder(cfg, progress), retrain)
    model.card = card
    return model  # type: ignore[return-value]
