"""The ``chexp`` command line (also ``python -m chexp``): ``train``, ``bench``, ``methods``, ``phantoms``,
``explain``, ``reproduce``, ``sweep``, ``paper-fixture``.

Each subcommand lives in its own module, registered in :data:`SUBCOMMANDS`; the module's
``add_arguments(parser)`` adds the subcommand's options and description and sets
``func(args) -> exit status``. A subcommand's parser is a :class:`LazyParser`: its module is
imported only when that subcommand is parsed or its help is shown, so ``chexp --help`` imports
no numerical library (torch, torchxrayvision, sklearn, pandas, matplotlib, ...) and answers at once.

A :class:`~chexp.errors.ChexpError` raised while a subcommand runs is a problem with the user's
input: ``main`` prints it as one line ``chexp: error: <message>`` on stderr and returns 2 (the
status argparse gives bad options). Any other exception keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from .. import __version__
from ..errors import ChexpError

__all__ = ["SUBCOMMANDS", "LazyParser", "build_parser", "main"]

#: ``chexp NAME`` -> (one-line help, module whose ``add_arguments(parser)`` defines the subcommand).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train (or load from cache) one of the project's models", "chexp.cli.train"),
    "bench": ("speed benchmarks (table; --json for one JSON line)", "chexp.cli.bench"),
    "methods": ("list the attribution methods (slug, display name, what each needs)", "chexp.cli.methods"),
    "phantoms": ("save a grid of phantom radiographs with their masks", "chexp.cli.phantoms"),
    "explain": ("explain your own radiographs (files or folders) with both papers' methods", "chexp.cli.explain"),
    "reproduce": ("run every notebook with papermill and build the book", "chexp.reproduce"),
    "sweep": ("run notebooks over profiles and a parameter grid (seeds), resumably, and summarize", "chexp.cli.sweep"),
    "paper-fixture": ("write the paper profile's plumbing fixture (phantom images, random weights)",
                      "chexp.cli.paper_fixture"),
}


class LazyParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that ``configure(parser)`` completes on first use.

    First use is parsing (``chexp NAME ...``) or formatting its usage or help (``chexp NAME
    --help``, an error message); :meth:`configure` forces it. Sub-parsers of a LazyParser are
    LazyParsers too (argparse's default), complete from the start unless given ``configure``.
    """

    def __init__(self, *args: Any, configure: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = configure

    def configure(self) -> LazyParser:
        """Add the arguments now (once); returns the parser."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending(self)
        return self

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self.configure()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self.configure()
        return super().format_usage()

    def format_help(self) -> str:
        self.configure()
        return super().format_help()


def _add_arguments_of(module: str, parser: argparse.ArgumentParser) -> None:
    importlib.import_module(module).add_arguments(parser)


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
                                help="what to do", parser_class=LazyParser)
    for name, (summary, module) in SUBCOMMANDS.items():
        sub.add_parser(name, help=summary, configure=partial(_add_arguments_of, module))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``chexp`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ChexpError as err:  # a problem with the user's input: a message, not a traceback
        print(f"chexp: error: {err}", file=sys.stderr)
        return 2
