"""Train one of the project's models, or load it from the model cache.

Every model is cached by a hash of its training configuration, so a second call with the same
options loads it (--retrain trains it again). The options left at their defaults leave the
model's default configuration, hence its cache entry, unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from .options import device_name, positive_int

_Config = TypeVar("_Config")


@dataclass(frozen=True)
class Trainer:
    """One ``chexp train`` model: ``run(args) -> exit status`` and a one-line description."""

    run: Callable[[argparse.Namespace], int]
    summary: str


def _with_epochs(config: _Config, args: argparse.Namespace) -> _Config:
    """``config`` with ``--epochs`` applied when it was given."""
    return config if args.epochs is None else dataclasses.replace(config, epochs=args.epochs)  # type: ignore[type-var]


def _print_card(model: Any) -> int:
    """Print the model card (name, training seconds, held-out metrics) as JSON."""
    card = model.card
    print(json.dumps({"name": card.name, "train_seconds": round(card.train_seconds, 1),
                      "metrics": card.metrics}, indent=1, default=str))
    return 0


def _phantom_classifier(args: argparse.Namespace) -> int:
    from ..phantoms import PhantomConfig
    from ..training import ClassifierTraining, phantom_classifier

    config = ClassifierTraining(phantom=PhantomConfig(size=args.size), seed=args.seed)
    card = phantom_classifier(_with_epochs(config, args), retrain=args.retrain, device=args.device).card
    print(f"phantom classifier: {card.train_seconds:.0f} s training")
    for name, auc in card.metrics["val_auc"].items():
        print(f"  held-out AUC {name:16s} {auc:.4f}")
    return 0


def _phantom_autoencoder(args: argparse.Namespace) -> int:
    from ..phantoms import PhantomConfig
    from ..training import AutoencoderTraining, phantom_autoencoder

    bottleneck = {} if args.latent_channels is None else {"latent_channels": args.latent_channels}
    config = AutoencoderTraining(phantom=PhantomConfig(size=args.size), seed=args.seed, **bottleneck)
    card = phantom_autoencoder(_with_epochs(config, args), retrain=args.retrain, device=args.device).card
    print(
        f"phantom autoencoder: latent {card.metrics['latent_size']}, held-out MAE "
        f"{card.metrics['val_mae']:.2f} (of a 2048 range), {card.train_seconds:.0f} s training"
    )
    return 0


def _cohen_config(args: argparse.Namespace, autoencoder: bool = False) -> Any:
    """The :mod:`chexp.training.cohen` configuration of ``--size``, ``--seed`` and ``--epochs``."""
    from ..training import CohenAutoencoderTraining, CohenTraining

    cls = CohenAutoencoderTraining if autoencoder else CohenTraining
    return _with_epochs(cls(size=args.size, seed=args.seed), args)


def _brixia_regressor(args: argparse.Namespace) -> int:
    from ..training import brixia_regressor

    return _print_card(brixia_regressor(_cohen_config(args), retrain=args.retrain, device=args.device))


def _brixia_detectors(args: argparse.Namespace, weighted: bool) -> int:
    from ..training import brixia_detectors

    return _print_card(brixia_detectors(_cohen_config(args), weighted, retrain=args.retrain, device=args.device))


def _cohen_autoencoder(args: argparse.Namespace) -> int:
    from ..training import cohen_autoencoder

    model = cohen_autoencoder(_cohen_config(args, autoencoder=True), args.latent_channels, retrain=args.retrain,
                              device=args.device)
    return _print_card(model)


#: ``chexp train NAME`` -> its trainer.
TRAINERS: dict[str, Trainer] = {
    "phantom-classifier": Trainer(_phantom_classifier, "classifier of the five phantom findings"),
    "phantom-autoencoder": Trainer(_phantom_autoencoder, "autoencoder of phantom radiographs (Latent Shift)"),
    "brixia-regressor": Trainer(_brixia_regressor, "BrixIA global score (0-18) regressor, Cohen data"),
    "brixia-detectors": Trainer(partial(_brixia_detectors, weighted=False),
                                "the three BrixIA zone-score detectors (BCE), Cohen data"),
    "brixia-detectors-weighted": Trainer(partial(_brixia_detectors, weighted=True),
                                         "the same detectors trained with weighted BCE"),
    "cohen-autoencoder": Trainer(_cohen_autoencoder, "autoencoder of the Cohen radiographs (Latent Shift)"),
}


def _run(args: argparse.Namespace) -> int:
    if args.device is None:
        from ..profiles.base import default_train_device

        args.device = default_train_device()
    return TRAINERS[args.model].run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp train`` on ``parser``: its options and help; ``args.func(args)`` runs it."""
    width = max(map(len, TRAINERS))
    parser.description = __doc__
    parser.epilog = "models:\n" + "\n".join(f"  {name:<{width}}  {t.summary}" for name, t in TRAINERS.items())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("model", choices=list(TRAINERS), metavar="MODEL", help="which model (listed below)")
    parser.add_argument("--size", type=int, default=128, help="image side the model is trained at (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order (default 0)")
    parser.add_argument("--latent-channels", type=positive_int, default=None,
                        help="autoencoders: bottleneck channels (default: the configuration's)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="training epochs (default: the configuration's)")
    parser.add_argument("--retrain", action="store_true", help="train even if the model is cached")
    parser.add_argument("--device", type=device_name, default=None,
                        help="where to train: cpu, cuda, cuda:N, mps (default: cuda when available, else cpu)")
    parser.set_defaults(func=_run)
