"""``chexp train`` adapters of the models chexp trains on the Cohen / BrixIA radiographs
(:mod:`chexp.training.cohen`): NAME -> function(args) -> exit code."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable

from torch import nn

from ..training import (
    CohenAutoencoderTraining,
    CohenTraining,
    brixia_detectors,
    brixia_regressor,
    cohen_autoencoder,
)


# --------------------------------------------------------------------------------------------
# `chexp train` adapters: NAME -> function(args) -> exit code
# --------------------------------------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options these trainers read (``chexp train`` already has --size/--seed/--latent-channels/--retrain)."""
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")


def _common(args: argparse.Namespace, cls: type[CohenTraining]) -> CohenTraining:
    cfg = cls(size=getattr(args, "size", 128), seed=getattr(args, "seed", 0))
    if getattr(args, "epochs", None):
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
    return cfg


def _print_card(model: nn.Module) -> int:
    card = model.card  # type: ignore[attr-defined]
    print(json.dumps({"name": card.name, "train_seconds": round(card.train_seconds, 1),
                      "metrics": card.metrics}, indent=1, default=str))
    return 0


CLI_TRAINERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "brixia-regressor": lambda a: _print_card(
        brixia_regressor(_common(a, CohenTraining), retrain=getattr(a, "retrain", False))),
    "brixia-detectors": lambda a: _print_card(
        brixia_detectors(_common(a, CohenTraining), False, retrain=getattr(a, "retrain", False))),
    "brixia-detectors-weighted": lambda a: _print_card(
        brixia_detectors(_common(a, CohenTraining), True, retrain=getattr(a, "retrain", False))),
    "cohen-autoencoder": lambda a: _print_card(
        cohen_autoencoder(_common(a, CohenAutoencoderTraining), getattr(a, "latent_channels", None),
                          retrain=getattr(a, "retrain", False))),
}
