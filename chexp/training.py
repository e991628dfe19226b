"""Training the project's own models, cached by a hash of their configuration.

:func:`phantom_classifier` and :func:`phantom_autoencoder` return models trained on phantom
radiographs (:mod:`chexp.phantoms`); the first call trains (a few minutes on 2 CPU cores, with a
progress bar) and saves to ``$CHEXP_CACHE_DIR/models/<name>-<hash>/``, later calls load. The
hash covers every setting that changes the result (architecture, data, seed, schedule), so a
changed configuration never loads a stale model. Training is seeded and deterministic on CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from .models.small import ConvAutoencoder, SmallClassifier
from .models.store import ModelCard, load_model, save_model
from .paths import models_dir
from .phantoms import FINDINGS, PhantomConfig, generate
from .progress import tqdm

#: Seed offset of the held-out phantom set: never overlaps a training set of the same seed.
VALIDATION_SEED_OFFSET = 1_000_003


def config_hash(config: dict[str, Any]) -> str:
    """Short stable hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_model(
    name: str,
    config: dict[str, Any],
    train_fn: Callable[[], tuple[nn.Module, ModelCard]],
    retrain: bool = False,
) -> tuple[nn.Module, ModelCard]:
    """Load ``models_dir()/<name>-<config_hash>``, or train it with ``train_fn`` and save it first.

    A file lock makes concurrent callers (parallel notebooks, test workers) train only once.
    """
    from .models.small import CODE_VERSION

    config = {**config, "model_code_version": CODE_VERSION}
    directory = models_dir() / f"{name}-{config_hash(config)}"
    with _lock(directory.with_name(directory.name + ".lock")):
        if retrain or not (directory / "card.json").is_file():
            model, card = train_fn()
            save_model(model, directory, card)
    return load_model(directory)


def config_dict(config: Any) -> dict[str, Any]:
    """A settings dataclass as JSON-ready dict (what enters cache keys and model cards)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def generator_fingerprint(phantom: PhantomConfig) -> str:
    """sha256 of two probe phantoms: changes whenever the generator's code changes its output,
    so that a cached model is never reused for different data."""
    return generate(2, seed=12345, config=phantom).sha256()


def _phantom_arrays(phantom: PhantomConfig, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    ps = generate(n, seed=seed, config=phantom)
    return torch.from_numpy(ps.images), torch.from_numpy(ps.labels), ps.sha256()


def _batches(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@dataclass(frozen=True)
class ClassifierTraining:
    """Settings of :func:`phantom_classifier` (all of them enter the cache hash)."""

    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    n_train: int = 3000
    n_val: int = 1000
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    channels: tuple[int, ...] = (16, 16, 32, 64, 64)


@dataclass(frozen=True)
class AutoencoderTraining:
    """Settings of :func:`phantom_autoencoder` (all of them enter the cache hash)."""

    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    latent_channels: int = 2
    width: int = 16
    depth: int = 2
    n_train: int = 2000
    n_val: int = 500
    epochs: int = 5
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0


def fit(
    model: nn.Module,
    loss_of_batch: Callable[[np.ndarray], torch.Tensor],
    n: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    desc: str,
    progress: bool = True,
) -> nn.Module:
    """The training loop every chexp model uses: AdamW, one-cycle schedule, seeded batch order.

    Args:
        model: trained in place (left in eval mode).
        loss_of_batch: maps the indices of a batch (into the training set of size ``n``) to a
            scalar loss; it does the model call, so any input pipeline fits.
        n: training set size.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-n // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    rng = np.random.default_rng(seed)
    bar = tqdm(total=steps, desc=desc, disable=not progress)
    for _ in range(epochs):
        model.train()
        for idx in _batches(n, batch_size, rng):
            loss = loss_of_batch(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    return model.eval()


def _predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def train_phantom_classifier(cfg: ClassifierTraining, progress: bool = True) -> tuple[SmallClassifier, ModelCard]:
    """Train a :class:`SmallClassifier` on phantoms; held-out AUC per finding in the card."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    x_train, y_train, train_hash = _phantom_arrays(cfg.phantom, cfg.n_train, cfg.seed)
    x_val, y_val, val_hash = _phantom_arrays(cfg.phantom, cfg.n_val, cfg.seed + VALIDATION_SEED_OFFSET)
    arch = {"targets": list(FINDINGS), "output": "probability", "channels": list(cfg.channels),
            "input_size": cfg.phantom.size}
    model = SmallClassifier(**arch)
    loss_fn = nn.BCEWithLogitsLoss()
    fit(model, lambda idx: loss_fn(model.logits(x_train[idx]), y_train[idx]), cfg.n_train,
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=1e-4, seed=cfg.seed,
        desc="train phantom classifier", progress=progress)
    scores = _predict(model, x_val).numpy()
    auc = {name: float(roc_auc_score(y_val[:, k].numpy(), scores[:, k])) for k, name in enumerate(FINDINGS)}
    card = ModelCard(
        name="phantom-classifier",
        architecture="SmallClassifier",
        arch_kwargs=arch,
        config=config_dict(cfg),
        config_hash=config_hash(config_dict(cfg)),
        data={"kind": "phantom", "train_sha256": train_hash, "val_sha256": val_hash,
              "n_train": cfg.n_train, "n_val": cfg.n_val},
        seed=cfg.seed,
        metrics={"val_auc": auc, "val_auc_min": min(auc.values())},
        train_seconds=time.perf_counter() - start,
    )
    return model.eval(), card


def train_phantom_autoencoder(cfg: AutoencoderTraining, progress: bool = True) -> tuple[ConvAutoencoder, ModelCard]:
    """Train a :class:`ConvAutoencoder` (L1 loss) on phantoms; held-out MAE in the card."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    x_train, _, train_hash = _phantom_arrays(cfg.phantom, cfg.n_train, cfg.seed)
    x_val, _, val_hash = _phantom_arrays(cfg.phantom, cfg.n_val, cfg.seed + VALIDATION_SEED_OFFSET)
    arch = {"latent_channels": cfg.latent_channels, "width": cfg.width, "depth": cfg.depth,
            "input_size": cfg.phantom.size}
    model = ConvAutoencoder(**arch)
    fit(model, lambda idx: (model(x_train[idx]) - x_train[idx]).abs().mean() / 1024.0, cfg.n_train,
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=1e-5, seed=cfg.seed,
        desc="train phantom autoencoder", progress=progress)
    recon = _predict(model, x_val)
    mae = float((recon - x_val).abs().mean())
    latent = int(np.prod(model.encode(x_val[:1]).shape[1:]))
    card = ModelCard(
        name="phantom-autoencoder",
        architecture="ConvAutoencoder",
        arch_kwargs=arch,
        config=config_dict(cfg),
        config_hash=config_hash(config_dict(cfg)),
        data={"kind": "phantom", "train_sha256": train_hash, "val_sha256": val_hash,
              "n_train": cfg.n_train, "n_val": cfg.n_val},
        seed=cfg.seed,
        metrics={"val_mae": mae, "val_mae_fraction_of_range": mae / 2048.0, "latent_size": latent},
        train_seconds=time.perf_counter() - start,
    )
    return model.eval(), card


def phantom_classifier(
    config: ClassifierTraining | None = None, progress: bool = True, retrain: bool = False
) -> SmallClassifier:
    """The phantom classifier for ``config`` (default settings if ``None``), trained once and cached.

    Targets: :data:`chexp.phantoms.FINDINGS`; output ``"probability"`` (use ``.with_output("logit")``
    for logits). The model card is at ``model.card``.
    """
    cfg = config or ClassifierTraining()
    key = config_dict(cfg) | {"generator": generator_fingerprint(cfg.phantom)}
    model, card = cached_model(
        "phantom-classifier", key, lambda: train_phantom_classifier(cfg, progress), retrain
    )
    model.card = card
    return model  # type: ignore[return-value]


def phantom_autoencoder(
    config: AutoencoderTraining | None = None, progress: bool = True, retrain: bool = False
) -> ConvAutoencoder:
    """The phantom autoencoder for ``config`` (default settings if ``None``), trained once and cached."""
    cfg = config or AutoencoderTraining()
    key = config_dict(cfg) | {"generator": generator_fingerprint(cfg.phantom)}
    model, card = cached_model(
        "phantom-autoencoder", key, lambda: train_phantom_autoencoder(cfg, progress), retrain
    )
    model.card = card
    return model  # type: ignore[return-value]
