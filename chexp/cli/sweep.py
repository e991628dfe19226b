"""``chexp sweep SWEEP.yaml``: run notebooks x profiles x a parameter grid, resumably, and summarize
the tables over seeds (:mod:`chexp.sweep`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cluster import SPEC_FORMS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp sweep`` on ``parser``; ``args.func(args)`` runs it."""
    parser.description = (
        "Run every notebook x profile x grid point of a sweep file with papermill, each in its own run folder "
        "keyed by a hash of notebook, parameters and chexp version (runs done before are skipped, a failed "
        "run does not stop the others), then write mean and spread over seeds of every table, and the "
        "failures, to <output-dir>/summary/. Exit status 1 when a run failed."
    )
    parser.add_argument("sweep", type=Path, metavar="SWEEP.yaml",
                        help="the sweep file (format: chexp.sweep.spec), or the name of one shipped with chexp (seeds)")
    parser.add_argument("--scheduler", default=None, metavar="SPEC",
                        help=f"where runs execute: {SPEC_FORMS} (default: here, one at a time)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="sweep folder (default: _build/sweeps/<name of the sweep>)")
    parser.add_argument("--notebooks-dir", type=Path, default=None,
                        help="folder of the notebooks the sweep names (default: the repository's notebooks/, "
                             "or the copy installed with chexp)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per cell (default: none)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..sweep import run_sweep

    result = run_sweep(args.sweep, args.output_dir, args.scheduler, notebooks_dir=args.notebooks_dir,
                       execution_timeout=args.timeout, progress=args.progress)
    print(result.summary(), file=sys.stdout)
    return result.exit_code
