"""Saving and loading the models chexp trains, with their provenance.

A saved model is a folder holding ``weights.pt`` (a plain ``state_dict``) and ``card.json``
(:class:`ModelCard`: architecture and its arguments, the training configuration and its
hash, a description and sha256 of the training data, the seed, held-out metrics, wall time,
library versions and the sha256 of the weights). Loading checks that sha256 and uses
``torch.load(weights_only=True)``, so a cached file can never run code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pooch
import torch
from torch import nn

from ..errors import ChecksumError, CorruptFileError
from .registry import build_architecture

WEIGHTS = "weights.pt"
CARD = "card.json"


@dataclass
class ModelCard:
    """Provenance of a trained model (saved as ``card.json`` beside its weights)."""

    name: str
    architecture: str
    arch_kwargs: dict[str, Any]
    config: dict[str, Any]
    config_hash: str
    data: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    created: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    weights_sha256: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return str(obj)


def _versions() -> dict[str, str]:
    from .. import __version__

    return {"chexp": __version__, "torch": torch.__version__, "python": platform.python_version()}


def save_model(model: nn.Module, directory: str | Path, card: ModelCard) -> Path:
    """Write ``model``'s weights and ``card`` to ``directory`` atomically.

    Everything is written to a temporary folder beside ``directory`` and renamed into place,
    so a crash never leaves a half-written model. If ``directory`` already exists it is replaced.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS)
        card.weights_sha256 = pooch.file_hash(tmp / WEIGHTS, alg="sha256")
        card.created = card.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        card.versions = card.versions or _versions()
        (tmp / CARD).write_text(card.to_json())
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_card(directory: str | Path) -> ModelCard:
    path = Path(directory) / CARD
    try:
        return ModelCard(**json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as err:
        raise CorruptFileError(f"cannot read model card {path}: {err}") from None


def load_model(
    directory: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelCard]:
    """Rebuild a saved model in eval mode with frozen parameters, after checking its sha256.

    Raises:
        ChecksumError: ``weights.pt`` does not match the card (the weights are not loaded).
        CorruptFileError: the card or the weights cannot be read.
    """
    directory = Path(directory)
    card = read_card(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise CorruptFileError(f"model folder {directory} has no {WEIGHTS}")
    actual = pooch.file_hash(weights, alg="sha256")
    if actual != card.weights_sha256:
        raise ChecksumError(
            f"checksum mismatch for {weights}: card says {card.weights_sha256}, file is {actual}; "
            "the weights were not loaded (delete the folder to retrain)"
        )
    model = build_architecture(card.architecture, card.arch_kwargs)
    try:
        state = torch.load(weights, map_location=map_location, weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError) as err:
        raise CorruptFileError(f"cannot load weights {weights}: {err}") from None
    model.eval().requires_grad_(False)
    return model.to(map_location), card
