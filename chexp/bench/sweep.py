"""Sweep of short notebook runs on a local Dask cluster against one after the other: speedup, overhead.

Writes a tiny parameterised notebook into a temporary folder (it burns ``--work`` seconds of CPU
time, then saves a one-row table) and runs a sweep of ``--runs`` seeds of it with
:func:`chexp.sweep.run_sweep` twice, each into a fresh folder (nothing is skipped as done): once
here, one run after the other (``sync``), once on ``local:--workers`` (a Dask ``LocalCluster``
started and closed inside the timing). Reported:

- ``wall_seconds``: the whole sweep, summary included (and the cluster's start and close);
- ``run_seconds_mean``: a run's own execution time (papermill: kernel start, cells, saving);
- ``overhead_seconds_per_run``: worker time per run not spent executing it,
  ``(workers * wall_seconds - sum of run seconds) / runs`` (``workers`` = 1 for ``sync``: the sweep's
  wall time per run minus the run's own time), and ``overhead_percent`` of the mean run;
- ``kernel_seconds_per_run``: a run's execution time minus the notebook's work (papermill and the
  kernel, paid by ``sync`` and cluster alike);
- ``cluster_seconds``: starting and closing the local cluster alone (no task), and
  ``overhead_seconds_per_run_after_start``: the cluster's overhead per run without it,
  ``overhead_seconds_per_run - workers * cluster_seconds / runs`` (what each further task costs);
- ``speedup``: sequential wall time over the cluster's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ..cli.options import positive_int

NOTEBOOK = "bench_work"

_CODE = '''import time

import pandas as pd

from chexp.outputs import save_table

start = time.process_time()
total = 0
while time.process_time() - start < float(work):
    total += sum(i * i for i in range(10_000))
save_table(pd.DataFrame({"seed": [int(seed)], "cpu_seconds": [time.process_time() - start]}), output_dir, "work")'''


def write_notebook(folder: Path) -> Path:
    """The benchmark's notebook ``<folder>/bench_work.ipynb`` (parameters ``work``: CPU seconds, ``seed``)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[
        new_code_cell('profile = "phantom"\ndevice = "cpu"\nn_samples = 1\nseed = 0\nwork = 1.0\n'
                      f'output_dir = "outputs/{NOTEBOOK}"', metadata={"tags": ["parameters"]}),
        new_code_cell(_CODE),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(folder) / f"{NOTEBOOK}.ipynb"
    nbformat.write(notebook, path)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=positive_int, default=8, help="runs in the sweep (default 8)")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="worker processes of the local cluster (default 2)")
    parser.add_argument("--work", type=float, default=5.0, help="CPU seconds each run's notebook works (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _time_sweep(spec: Any, out: Path, scheduler: str | None, workers: int) -> dict[str, Any]:
    from ..sweep import run_sweep

    start = time.perf_counter()
    result = run_sweep(spec, out, scheduler, progress=False)
    wall = time.perf_counter() - start
    seconds = [float(result.status(run)["seconds"]) for run in result.runs]
    overhead = (workers * wall - sum(seconds)) / len(seconds)
    mean = sum(seconds) / len(seconds)
    return {"scheduler": scheduler or "sync", "workers": workers, "wall_seconds": round(wall, 3),
            "run_seconds_mean": round(mean, 3), "overhead_seconds_per_run": round(overhead, 3),
            "overhead_percent": round(100 * overhead / mean, 2), "failed": len(result.failed)}


def run(args: argparse.Namespace) -> int:
    from ..cluster import open_client
    from ..provenance import provenance
    from ..sweep import parse_sweep

    with tempfile.TemporaryDirectory(prefix="chexp-bench-sweep-") as tmp:
        folder = Path(tmp)
        write_notebook(folder)
        spec = parse_sweep({"name": "bench", "params": {"work": float(args.work)},
                            "grid": {"seed": list(range(args.runs))}, "notebooks": [NOTEBOOK]}, folder)
        sequential = _time_sweep(spec, folder / "sync", None, 1)
        cluster = _time_sweep(spec, folder / "local", f"local:{args.workers}", args.workers)
    start = time.perf_counter()
    with open_client(f"local:{args.workers}"):
        pass
    cluster["cluster_seconds"] = round(time.perf_counter() - start, 3)
    after_start = cluster["overhead_seconds_per_run"] - args.workers * cluster["cluster_seconds"] / args.runs
    cluster["overhead_seconds_per_run_after_start"] = round(after_start, 3)
    cluster["overhead_percent_after_start"] = round(100 * after_start / cluster["run_seconds_mean"], 2)
    result = {
        "runs": args.runs,
        "work_seconds": args.work,
        "kernel_seconds_per_run": round(sequential["run_seconds_mean"] - args.work, 3),
        "sequential": sequential,
        "local": cluster,
        "speedup": round(sequential["wall_seconds"] / cluster["wall_seconds"], 3),
        "provenance": provenance("cpu"),
    }
    print(f"{'':<26}{'sequential':>12}{'local:' + str(args.workers):>12}")
    for key in ("wall_seconds", "run_seconds_mean", "overhead_seconds_per_run", "overhead_percent", "failed"):
        print(f"{key:<26}{sequential[key]!s:>12}{cluster[key]!s:>12}")
    for key in ("cluster_seconds", "overhead_seconds_per_run_after_start", "overhead_percent_after_start"):
        print(f"{key:<38}{cluster[key]!s:>12}")
    print(f"{'speedup':<26}{result['speedup']!s:>12}")
    print(f"{'kernel_seconds_per_run':<26}{result['kernel_seconds_per_run']!s:>12}")
    if args.json:
        print(json.dumps(result))
    return 1 if sequential["failed"] or cluster["failed"] else 0
