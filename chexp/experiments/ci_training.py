"""The extra phantom models of the CheXplain-IBA chapters, trained once and cached.

* :func:`imbalanced_classifier`: Table 3's pair, a :class:`~chexp.models.small.SmallClassifier`
  trained on *imbalanced* phantoms (prevalence 0.1 per finding) with plain BCE or with weighted
  BCE (``pos_weight = N_neg / N_pos`` per finding, counted on the training labels).
* Training uses :func:`chexp.training.fit`, the loop every chexp model shares.

Every model goes through :func:`chexp.training.cached_model`: the cache key holds every setting
and the phantom generator's fingerprint, so a changed setting or generator never loads a stale
model. Each costs well under a minute of CPU the first time (numbers in the model card's
``train_seconds``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..metrics.classification import auc_per_task
from ..models.small import SmallClassifier
from ..models.store import ModelCard
from ..phantoms import FINDINGS, PhantomConfig, generate
from ..training import (
    VALIDATION_SEED_OFFSET,
    cached_model,
    config_dict,
    config_hash,
    fit,
    generator_fingerprint,
)

__all__ = ["ImbalancedTraining", "imbalanced_classifier", "phantom_training_images", "pos_weight"]


@dataclass(frozen=True)
class ImbalancedTraining:
    """Settings of Table 3's classifiers (all enter the cache hash)."""

    phantom: PhantomConfig = field(default_factory=lambda: PhantomConfig(prevalence=0.1))
    n_train: int = 1200
    n_val: int = 400
    epochs: int = 4
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    channels: tuple[int, ...] = (16, 16, 32, 64, 64)


def pos_weight(labels: torch.Tensor) -> torch.Tensor:
    """``N_neg / N_pos`` per column of ``labels (N, T)`` (1 where a column has no positive)."""
    n_pos = labels.sum(0)
    n_neg = len(labels) - n_pos
    return torch.where(n_pos > 0, n_neg / n_pos.clamp_min(1), torch.ones_like(n_pos))


def phantom_training_images(phantom: PhantomConfig, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """``n -> (n, 1, S, S)``: the first ``n`` images of the training stream ``seed``."""
    return lambda n: torch.from_numpy(generate(n, seed=seed, config=phantom).images)


def train_imbalanced(cfg: ImbalancedTraining, weighted: bool, progress: bool = True) -> tuple[SmallClassifier, ModelCard]:
    """Train one of Table 3's classifiers; held-out AUC per finding in the card."""
    start = time.perf_counter()
    train = generate(cfg.n_train, seed=cfg.seed, config=cfg.phantom)
    val = generate(cfg.n_val, seed=cfg.seed + VALIDATION_SEED_OFFSET, config=cfg.phantom)
    x, y = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    weights = pos_weight(y) if weighted else torch.ones(len(FINDINGS))
    arch = {"targets": list(FINDINGS), "output": "probability", "channels": list(cfg.channels),
            "input_size": cfg.phantom.size}
    torch.manual_seed(cfg.seed)
    model = SmallClassifier(**arch)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=weights)
    name = "weighted BCE" if weighted else "BCE"
    fit(model, lambda idx: loss_fn(model.logits(x[idx]), y[idx]), len(x), epochs=cfg.epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=1e-4, seed=cfg.seed,
        desc=f"train imbalanced phantom classifier ({name})", progress=progress)
    with torch.no_grad():
        scores = torch.cat([model(torch.from_numpy(val.images[i : i + 256])) for i in range(0, cfg.n_val, 256)])
    auc = auc_per_task(scores.numpy(), val.labels, FINDINGS)
    config = {**config_dict(cfg), "weighted": weighted}
    card = ModelCard(
        name="phantom-imbalanced-" + ("weighted-bce" if weighted else "bce"),
        architecture="SmallClassifier", arch_kwargs=arch, config=config, config_hash=config_hash(config),
        data={"kind": "phantom", "train_sha256": train.sha256(), "val_sha256": val.sha256(),
              "n_train": cfg.n_train, "n_val": cfg.n_val,
              "train_prevalence": {f: float(v) for f, v in zip(FINDINGS, y.mean(0).tolist())}},
        seed=cfg.seed,
        metrics={"val_auc": auc, "val_auc_mean": float(np.nanmean(list(auc.values()))),
                 "pos_weight": weights.tolist()},
        train_seconds=time.perf_counter() - start,
    )
    return model.eval(), card


def imbalanced_classifier(
    config: ImbalancedTraining | None = None, weighted: bool = False, progress: bool = True, retrain: bool = False
) -> SmallClassifier:
    """Table 3's phantom classifier trained with BCE (``weighted=False``) or weighted BCE, cached."""
    cfg = config or ImbalancedTraining()
    key = {**config_dict(cfg), "weighted": weighted, "generator": generator_fingerprint(cfg.phantom)}
    name = "phantom-imbalanced-" + ("weighted-bce" if weighted else "bce")
    model, card = cached_model(name, key, lambda: train_imbalanced(cfg, weighted, progress), retrain)
    model.card = card
    return model  # type: ignore[return-value]
