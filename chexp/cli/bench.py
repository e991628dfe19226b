"""``chexp bench NAME``: the speed benchmarks of :mod:`chexp.bench`.

Each benchmark module has ``add_arguments(parser)`` and ``run(args) -> exit status``, imports
torch only when it runs, and its docstring's first line is its one-line summary.
"""

from __future__ import annotations

import argparse
import importlib

#: ``chexp bench NAME`` -> module of :mod:`chexp.bench`.
BENCHMARKS: dict[str, str] = {
    "latent-shift": "chexp.bench.latent_shift",
    "iba": "chexp.bench.iba",
    "deletion": "chexp.bench.deletion",
    "sweep": "chexp.bench.sweep",
    "dataset-scale": "chexp.bench.dataset_scale",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp bench`` on ``parser``: one sub-command per benchmark."""
    parser.description = "Speed benchmarks: each prints a table, and with --json one JSON object as its last line."
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK", title="benchmarks",
                                       help="which benchmark")
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        doc = module.__doc__ or ""
        bench = benchmarks.add_parser(name, help=doc.partition("\n")[0], description=doc,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(bench)
        bench.set_defaults(func=module.run)
