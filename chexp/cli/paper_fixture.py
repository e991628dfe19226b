"""Write the paper-profile plumbing fixture: phantom images in the NIH/RSNA/SIIM layouts and
randomly initialised weights (:mod:`chexp.cohen.paper_fixture`); it proves plumbing, not numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import positive_int


def _run(args: argparse.Namespace) -> int:
    from ..cohen.paper_fixture import LABEL, write_paper_fixture

    paths = write_paper_fixture(args.folder, args.n_samples, args.n_draw, args.seed)
    print(f"wrote the {LABEL}:\n  export CHEXP_PAPER_DATA={paths['data'].resolve()}\n"
          f"  export CHEXP_WEIGHTS_DIR={paths['weights'].resolve()}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp paper-fixture`` on ``parser``: its options and help; ``args.func(args)`` runs it."""
    parser.description = (
        "Write the paper-profile plumbing fixture (phantom images in the NIH/RSNA/SIIM layouts, randomly "
        "initialised weights; proves plumbing, not numbers) into FOLDER/data (for CHEXP_PAPER_DATA) and "
        "FOLDER/weights (for CHEXP_WEIGHTS_DIR), for a run of the paper profile at a smoke size."
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="where to write (created)")
    parser.add_argument("--n-samples", type=positive_int, default=1,
                        help="per-task sample size of the smoke run, its notebooks' n_samples (default 1)")
    parser.add_argument("--n-draw", type=positive_int, default=12,
                        help="size of its balanced draws without a task: n_auc, kit_pool, fp_pool (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed, its notebooks' seed (default 0)")
    parser.set_defaults(func=_run)
