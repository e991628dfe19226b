"""The ``chexp`` command line: ``train``, ``bench``, ``reproduce``, ``phantoms``.

Subcommands are registered in tables (name -> module or callable), never in an if/elif ladder.
Benchmark modules live in :mod:`chexp.bench` and expose ``add_arguments(parser)`` and
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

#: ``chexp bench NAME`` -> module of :mod:`chexp.bench`.
BENCHMARKS: dict[str, str] = {
    "latent-shift": "chexp.bench.latent_shift",
    "iba": "chexp.bench.iba",
    "deletion": "chexp.bench.deletion",
}


def _train_phantom_classifier(args: argparse.Namespace) -> int:
    from .training import ClassifierTraining, phantom_classifier
    from .phantoms import PhantomConfig

    cfg = ClassifierTraining(phantom=PhantomConfig(size=args.size), seed=args.seed)
    model = phantom_classifier(cfg, retrain=args.retrain)
    card = model.card
    print(f"phantom classifier: {card.train_seconds:.0f} s training")
    for name, auc in card.metrics["val_auc"].items():
        print(f"  held-out AUC {name:16s} {auc:.4f}")
    return 0


def _train_phantom_autoencoder(args: argparse.Namespace) -> int:
    from .training import AutoencoderTraining, phantom_autoencoder
    from .phantoms import PhantomConfig

    kwargs = {} if args.latent_channels is None else {"latent_channels": args.latent_channels}
    cfg = AutoencoderTraining(phantom=PhantomConfig(size=args.size), seed=args.seed, **kwargs)
    model = phantom_autoencoder(cfg, retrain=args.retrain)
    card = model.card
    print(
        f"phantom autoencoder: latent {card.metrics['latent_size']}, held-out MAE "
        f"{card.metrics['val_mae']:.2f} (of a 2048 range), {card.train_seconds:.0f} s training"
    )
    return 0


#: ``chexp train NAME`` -> function(args) -> exit code.
TRAINERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "phantom-classifier": _train_phantom_classifier,
    "phantom-autoencoder": _train_phantom_autoencoder,
}


def _cohen_trainers() -> dict[str, Callable[[argparse.Namespace], int]]:
    from .cohen.train import CLI_TRAINERS

    return dict(CLI_TRAINERS)


TRAINERS.update(_cohen_trainers())


def _cmd_train(args: argparse.Namespace) -> int:
    return TRAINERS[args.model](args)


def _cmd_bench(args: argparse.Namespace) -> int:
    return args.bench_module.run(args)


def _cmd_phantoms(args: argparse.Namespace) -> int:
    from .phantoms import PhantomConfig, generate
    from .plotting.phantoms import plot_phantom_grid

    ps = generate(args.n, seed=args.seed, config=PhantomConfig(size=args.size))
    plot_phantom_grid(ps, n=args.n, path=args.out)
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chexp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train (or load from cache) one of the project's models")
    train.add_argument("model", choices=sorted(TRAINERS))
    train.add_argument("--size", type=int, default=128, help="image side the model is trained at")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--latent-channels", type=int, default=None, help="autoencoder bottleneck channels")
    train.add_argument("--retrain", action="store_true", help="ignore the cache")
    from .cohen.train import add_train_arguments

    add_train_arguments(train)
    train.set_defaults(func=_cmd_train)

    bench = sub.add_parser("bench", help="speed benchmarks (table; --json for one JSON line)")
    bench_sub = bench.add_subparsers(dest="benchmark", required=True)
    for name, module_name in BENCHMARKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        p = bench_sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None)
        module.add_arguments(p)
        p.set_defaults(func=_cmd_bench, bench_module=module)

    phantoms = sub.add_parser("phantoms", help="save a grid of phantom radiographs with their masks")
    phantoms.add_argument("--n", type=int, default=16)
    phantoms.add_argument("--seed", type=int, default=0)
    phantoms.add_argument("--size", type=int, default=128)
    phantoms.add_argument("--out", default="phantoms.png")
    phantoms.set_defaults(func=_cmd_phantoms)

    try:
        from . import reproduce
    except ModuleNotFoundError as err:
        if err.name != "chexp.reproduce":
            raise
    else:
        reproduce.add_subparser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import ChexpError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ChexpError as err:  # user-facing problems: a message, not a traceback
        print(f"chexp: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
