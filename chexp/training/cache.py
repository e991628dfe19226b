"""The trained-model cache: ``models_dir()/<name>-<config hash>/``, written once per configuration.

The hash covers the configuration's cache key (every setting that changes the result, see
:meth:`chexp.training.configs.Training.cache_key`) and :data:`chexp.models.small.CODE_VERSION`,
so a changed configuration or model code never loads a stale model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch import nn

from ..models.small import CODE_VERSION
from ..models.store import ModelCard, load_model, save_model
from ..paths import models_dir


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
    """Load ``models_dir()/<name>-<config_hash>`` (on the CPU), or train it with ``train_fn`` and
    save it first.

    A file lock makes concurrent callers (parallel notebooks, test workers) train only once.
    """
    config = {**config, "model_code_version": CODE_VERSION}
    directory = models_dir() / f"{name}-{config_hash(config)}"
    with _lock(directory.with_name(directory.name + ".lock")):
        if retrain or not (directory / "card.json").is_file():
            model, card = train_fn()
            save_model(model, directory, card)
    return load_model(directory)
