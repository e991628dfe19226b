"""The ``chexp`` command line (also ``python -m chexp``): ``train``, ``bench``, ``phantoms``, ``reproduce``.

Each subcommand lives in its own module and is registered in :data:`SUBCOMMANDS` by the function
that adds its parser; the parser's ``func(args) -> exit status`` runs it. Building the parser
imports no numerical library (torch, torchxrayvision, sklearn, pandas, matplotlib, ...): a
subcommand imports what it needs when it runs, so ``chexp --help`` answers at once.

A :class:`~chexp.errors.ChexpError` raised while a subcommand runs is a problem with the user's
input: ``main`` prints it as one line ``chexp: error: <message>`` on stderr and returns 2 (the
status argparse gives bad options). Any other exception keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import ChexpError
from ..reproduce import add_subparser as _add_reproduce
from . import bench, phantoms, train

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: Functions that each add one subcommand to the ``chexp`` sub-parser set, in the order of the help.
SUBCOMMANDS: tuple[Callable[[Any], argparse.ArgumentParser], ...] = (
    train.add_subparser,
    bench.add_subparser,
    phantoms.add_subparser,
    _add_reproduce,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``chexp`` parser; parsed arguments carry ``func(args) -> exit status``."""
    parser = argparse.ArgumentParser(
        prog="chexp",
        description="Latent Shift (Gifsplanation) and IBA (CheXplain-IBA) for chest X-ray models: "
        "train the project's models, time the methods, draw phantoms, reproduce the papers.",
        epilog="Run 'chexp COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"chexp {__version__}",
                        help="print chexp's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands",
                                help="what to do")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``chexp`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ChexpError as err:  # a problem with the user's input: a message, not a traceback
        print(f"chexp: error: {err}", file=sys.stderr)
        return 2
