"""Models trained on phantom radiographs (:mod:`chexp.phantoms`), cached by configuration.

* :func:`phantom_classifier`: a :class:`~chexp.models.small.SmallClassifier` for the five
  findings (:data:`chexp.phantoms.FINDINGS`).
* :func:`phantom_autoencoder`: a :class:`~chexp.models.small.ConvAutoencoder` (its bottleneck is
  configurable for the Gifsplanation bottleneck study).
* :func:`imbalanced_classifier`: CheXplain-IBA Table 3's pair, trained on *imbalanced* phantoms
  (prevalence 0.1 per finding) with plain BCE or with weighted BCE (``pos_weight = N_neg / N_pos``
  per finding, counted on the training labels).
* :func:`phantom_regressor`: the phantom severity score regressor (CheXplain-IBA Fig. 3 on
  phantoms; the score is :mod:`chexp.training.severity`).

Training sets are the first ``n_train`` phantoms of stream ``seed``; held-out sets the first
``n_val`` of stream ``seed + VALIDATION_SEED_OFFSET``. The cache key holds every setting and the
generator's fingerprint, so a changed setting or generator never loads a stale model.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..metrics.classification import auc_per_task
from ..models.small import ConvAutoencoder, SmallClassifier
from ..models.store import ModelCard
from ..phantoms import FINDINGS, PhantomConfig, PhantomSet, generate
from .autoencoder import latent_size, train_autoencoder
from .cache import cached_model, config_hash
from .classifier import bce, classifier_architecture, train_classifier
from .configs import (
    AutoencoderTraining,
    ClassifierTraining,
    ImbalancedTraining,
    PhantomRegressionTraining,
    PhantomTraining,
)
from .fit import predict
from .severity import SCORE_NAME, zone_scores

#: Seed offset of the held-out phantom set: never overlaps a training set of the same seed.
VALIDATION_SEED_OFFSET = 1_000_003
#: Images per forward pass when scoring the held-out set.
PREDICT_BATCH = 256


def phantom_training_images(phantom: PhantomConfig, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """``n -> (n, 1, S, S)``: the first ``n`` images of the training stream ``seed``."""
    return lambda n: torch.from_numpy(generate(n, seed=seed, config=phantom).images)


def _phantom_sets(cfg: PhantomTraining) -> tuple[PhantomSet, PhantomSet]:
    """The training and held-out phantoms of ``cfg``."""
    return (generate(cfg.n_train, seed=cfg.seed, config=cfg.phantom),
            generate(cfg.n_val, seed=cfg.seed + VALIDATION_SEED_OFFSET, config=cfg.phantom))


def _data_card(train: PhantomSet, val: PhantomSet, **extra: object) -> dict[str, object]:
    return {"kind": "phantom", "train_sha256": train.sha256(), "val_sha256": val.sha256(),
            "n_train": len(train.images), "n_val": len(val.images), **extra}


def _images(ps: PhantomSet, device: str | torch.device) -> torch.Tensor:
    return torch.from_numpy(ps.images).to(device)


def train_phantom_classifier(
    cfg: ClassifierTraining, progress: bool = True, device: str | torch.device = "cpu"
) -> tuple[SmallClassifier, ModelCard]:
    """Train a :class:`SmallClassifier` (BCE) on phantoms; held-out AUC per finding in the card."""
    start = time.perf_counter()
    train, val = _phantom_sets(cfg)
    x, y = _images(train, device), torch.from_numpy(train.labels).to(device)
    arch = classifier_architecture(FINDINGS, "probability", cfg.channels, cfg.phantom.size)
    model = train_classifier(arch, lambda idx: x[idx], y, nn.BCEWithLogitsLoss(), cfg, cfg.weight_decay,
                             desc="train phantom classifier", progress=progress, device=device)
    scores = predict(model, _images(val, device), PREDICT_BATCH).cpu().numpy()
    from sklearn.metrics import roc_auc_score  # a second to import: only when a model is trained

    auc = {name: float(roc_auc_score(val.labels[:, k], scores[:, k])) for k, name in enumerate(FINDINGS)}
    card = ModelCard(
        name="phantom-classifier", architecture="SmallClassifier", arch_kwargs=arch,
        config=cfg.settings(), config_hash=config_hash(cfg.settings()), data=_data_card(train, val),
        seed=cfg.seed, metrics={"val_auc": auc, "val_auc_min": min(auc.values())},
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def train_imbalanced(
    cfg: ImbalancedTraining, weighted: bool, progress: bool = True, device: str | torch.device = "cpu"
) -> tuple[SmallClassifier, ModelCard]:
    """Train one of Table 3's classifiers (BCE or weighted BCE); held-out AUC per finding in the card."""
    start = time.perf_counter()
    train, val = _phantom_sets(cfg)
    x, y = _images(train, device), torch.from_numpy(train.labels).to(device)
    loss = bce(y, weighted)
    arch = classifier_architecture(FINDINGS, "probability", cfg.channels, cfg.phantom.size)
    model = train_classifier(arch, lambda idx: x[idx], y, loss, cfg, cfg.weight_decay,
                             desc=f"train imbalanced phantom classifier ({'weighted BCE' if weighted else 'BCE'})",
                             progress=progress, device=device)
    scores = predict(model, _images(val, device), PREDICT_BATCH).cpu().numpy()
    auc = auc_per_task(scores, val.labels, FINDINGS)
    config = {**cfg.settings(), "weighted": weighted}
    card = ModelCard(
        name=_imbalanced_name(weighted), architecture="SmallClassifier", arch_kwargs=arch, config=config,
        config_hash=config_hash(config),
        data=_data_card(train, val,
                        train_prevalence={f: float(v) for f, v in zip(FINDINGS, y.mean(0).tolist(), strict=True)}),
        seed=cfg.seed,
        metrics={"val_auc": auc, "val_auc_mean": float(np.nanmean(list(auc.values()))),
                 "pos_weight": loss.pos_weight.tolist()},
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def train_phantom_regressor(
    cfg: PhantomRegressionTraining, progress: bool = True, device: str | torch.device = "cpu"
) -> tuple[SmallClassifier, ModelCard]:
    """Train the phantom severity regressor (loss and last layer: ``cfg.head``); held-out MAE and
    Pearson r in the card."""
    start = time.perf_counter()
    train, val = _phantom_sets(cfg)
    x = _images(train, device)
    y = torch.from_numpy(zone_scores(train.lungs, train.masks, cfg.thresholds)[1].sum(1)).to(device)
    y_val = zone_scores(val.lungs, val.masks, cfg.thresholds)[1].sum(1)
    train_mean = float(y.mean())
    arch = classifier_architecture([SCORE_NAME], "score", cfg.channels, cfg.phantom.size) | cfg.head.architecture()
    model = train_classifier(arch, lambda idx: x[idx], y, cfg.head.loss_function(),
                             cfg, cfg.weight_decay, bias=train_mean, desc="train phantom severity regressor",
                             progress=progress, device=device)
    pred = predict(model, _images(val, device), PREDICT_BATCH)[:, 0].cpu().numpy()
    card = ModelCard(
        name="phantom-severity-regressor", architecture="SmallClassifier", arch_kwargs=arch,
        config=cfg.settings(), config_hash=config_hash(cfg.settings()),
        data=_data_card(train, val, score="sum of six zone scores 0-3 (0-18)"),
        seed=cfg.seed,
        metrics={"val_mae": float(np.abs(pred - y_val).mean()),
                 "val_mae_predict_train_mean": float(np.abs(train_mean - y_val).mean()),
                 "val_pearson": float(np.corrcoef(pred, y_val)[0, 1])},
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def train_phantom_autoencoder(
    cfg: AutoencoderTraining, progress: bool = True, device: str | torch.device = "cpu"
) -> tuple[ConvAutoencoder, ModelCard]:
    """Train a :class:`ConvAutoencoder` (L1 loss) on phantoms; held-out MAE in the card."""
    start = time.perf_counter()
    train, val = _phantom_sets(cfg)
    x, x_val = _images(train, device), _images(val, device)
    model = train_autoencoder(cfg, lambda idx: x[idx], len(x), cfg.phantom.size, cfg.weight_decay,
                              desc="train phantom autoencoder", progress=progress, device=device)
    mae = float((predict(model, x_val, PREDICT_BATCH) - x_val).abs().mean())
    card = ModelCard(
        name="phantom-autoencoder", architecture="ConvAutoencoder", arch_kwargs=cfg.architecture(cfg.phantom.size),
        config=cfg.settings(), config_hash=config_hash(cfg.settings()), data=_data_card(train, val),
        seed=cfg.seed,
        metrics={"val_mae": mae, "val_mae_fraction_of_range": mae / 2048.0,
                 "latent_size": latent_size(model, x_val[:1])},
        train_seconds=time.perf_counter() - start,
    )
    return model, card


def _imbalanced_name(weighted: bool) -> str:
    return "phantom-imbalanced-" + ("weighted-bce" if weighted else "bce")


# --------------------------------------------------------------------------------------------
# cached entry points: the model is trained on `device` the first time, returned on the CPU
# with its card at `model.card`
# --------------------------------------------------------------------------------------------
def phantom_classifier(
    config: ClassifierTraining | None = None, progress: bool = True, retrain: bool = False,
    device: str | torch.device = "cpu",
) -> SmallClassifier:
    """The phantom classifier for ``config`` (default settings if ``None``), trained once and cached.

    Targets: :data:`chexp.phantoms.FINDINGS`; output ``"probability"`` (use ``.with_output("logit")``
    for logits). The model card is at ``model.card``.
    """
    cfg = config or ClassifierTraining()
    model, card = cached_model("phantom-classifier", cfg.cache_key(),
                               lambda: train_phantom_classifier(cfg, progress, device), retrain)
    model.card = card
    return model  # type: ignore[return-value]


def phantom_autoencoder(
    config: AutoencoderTraining | None = None, progress: bool = True, retrain: bool = False,
    device: str | torch.device = "cpu",
) -> ConvAutoencoder:
    """The phantom autoencoder for ``config`` (default settings if ``None``), trained once and cached."""
    cfg = config or AutoencoderTraining()
    model, card = cached_model("phantom-autoencoder", cfg.cache_key(),
                               lambda: train_phantom_autoencoder(cfg, progress, device), retrain)
    model.card = card
    return model  # type: ignore[return-value]


def imbalanced_classifier(
    config: ImbalancedTraining | None = None, weighted: bool = False, progress: bool = True,
    retrain: bool = False, device: str | torch.device = "cpu",
) -> SmallClassifier:
    """Table 3's phantom classifier trained with BCE (``weighted=False``) or weighted BCE, cached."""
    cfg = config or ImbalancedTraining()
    model, card = cached_model(_imbalanced_name(weighted), {**cfg.cache_key(), "weighted": weighted},
                               lambda: train_imbalanced(cfg, weighted, progress, device), retrain)
    model.card = card
    return model  # type: ignore[return-value]


def phantom_regressor(
    config: PhantomRegressionTraining | None = None, progress: bool = True, retrain: bool = False,
    device: str | torch.device = "cpu",
) -> SmallClassifier:
    """The phantom severity regressor (target :data:`~chexp.training.severity.SCORE_NAME`, output
    ``"score"``), trained once and cached."""
    cfg = config or PhantomRegressionTraining()
    model, card = cached_model("phantom-severity-regressor", cfg.cache_key(),
                               lambda: train_phantom_regressor(cfg, progress, device), retrain)
    model.card = card
    return model  # type: ignore[return-value]
