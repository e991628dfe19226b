"""Sweeps: many notebooks x profiles x parameter grids (seeds included), run resumably on a Dask
cluster or here, with mean and spread over seeds of every table (``chexp sweep SWEEP.yaml``).

- :mod:`chexp.sweep.spec`: the sweep file and its validation;
- :mod:`chexp.sweep.runner`: run folders keyed by a hash, resuming, the summary folder;
- :mod:`chexp.sweep.summary`: mean and spread of one table over runs.
"""

from __future__ import annotations

from .runner import RUN_RECORD, Run, SweepResult, plan_runs, run_key, run_sweep, summarize_sweep
from .spec import SEED, NotebookEntry, SweepSpec, load_sweep, notebook_parameters, parse_sweep
from .summary import STATS, TableSummary, markdown_table, summarize_tables

__all__ = [
    "SEED",
    "STATS",
    "RUN_RECORD",
    "NotebookEntry",
    "SweepSpec",
    "Run",
    "SweepResult",
    "TableSummary",
    "load_sweep",
    "parse_sweep",
    "notebook_parameters",
    "plan_runs",
    "run_key",
    "run_sweep",
    "summarize_sweep",
    "summarize_tables",
    "markdown_table",
]
