"""Dataset-scale evaluation on Dask: the maps + IoU path with 2 workers against 1 (and in-process).

Runs :func:`chexp.experiments.iou.compute_iou` (the Table 1 image path) on the same phantom
images three ways: in this process, then on a local Dask cluster of 1 worker process and of
``--workers`` processes (:func:`chexp.experiments.batches.map_batches`: one task per batch of
``--batch-size`` images, the models sent to each worker once). Every run uses ``--threads``
torch threads per process (default 1, so that the workers do not compete for the cores); the
tables must be identical (``identical``).

Per cluster size: ``wall_s`` (the call, from submitting the first task to the last result),
``task_compute_s`` (the sum of the tasks' compute time on the workers, from Dask's task stream),
``overhead_per_task_s = (workers * wall_s - task_compute_s) / tasks`` (scheduling, shipping the
models and batches, and cores left idle at the end when the tasks do not divide evenly) and
``overhead_share`` (that over the mean task's compute). ``speedup = wall_s(1) / wall_s(N)``.
Each run is timed after a first, untimed one (kernels and caches of a fresh process); the
clusters' start-up and the workers' first import of chexp are timed apart (``cluster_start_s``).
The phantom profile's trained models (``--size``) come from the model cache (trained on first
use).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from ..cli.options import positive_int

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

#: Methods timed by default: a cheap one, a 50-step one and Latent Shift.
METHODS = ("grad", "integrated", "latentshift-max")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=positive_int, default=128, help="phantom image side (default 128)")
    parser.add_argument("--images", type=positive_int, default=6, help="images per task (default 6)")
    parser.add_argument("--tasks", default="Cardiomegaly,Mass", help="comma-separated phantom findings")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default {','.join(METHODS)})")
    parser.add_argument("--batch-size", type=positive_int, default=1, help="images per Dask task (default 1)")
    parser.add_argument("--workers", type=positive_int, default=2, help="worker processes compared with 1")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def run(args: argparse.Namespace) -> int:
    import torch
    from distributed import Client, LocalCluster

    from ..experiments.iou import compute_iou
    from ..profiles import get_profile
    from ..provenance import provenance

    torch.set_num_threads(args.threads)
    prof = get_profile("phantom", size=args.size)
    classifier, autoencoder = prof.classifier().eval(), prof.autoencoder().eval()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    samples = {t: prof.samples(args.images, seed=0, task=t) for t in tasks}

    def iou(client: Client | None) -> pd.DataFrame:
        return compute_iou(methods, classifier, autoencoder, samples, batch_size=args.batch_size, progress=False,
                           client=client)

    iou(None)  # warm-up: the first passes of a process build kernels and caches
    t0 = time.perf_counter()
    here = iou(None)
    in_process = time.perf_counter() - t0
    n_tasks = sum(-(-args.images // args.batch_size) for _ in tasks)
    runs: dict[str, dict[str, Any]] = {}
    identical = True
    for workers in dict.fromkeys([1, args.workers]):
        t0 = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as client:
            client.run(_warm_up)
            start = time.perf_counter() - t0
            iou(client)  # warm-up, as in-process
            table, wall, compute = _timed(client, iou)
        identical = identical and table.equals(here)
        overhead = (workers * wall - compute) / n_tasks
        runs[str(workers)] = {"wall_s": round(wall, 3), "task_compute_s": round(compute, 3),
                              "overhead_per_task_s": round(overhead, 3),
                              "overhead_share": round(overhead / (compute / n_tasks), 4),
                              "cluster_start_s": round(start, 3)}
    result = {
        "settings": {"size": args.size, "tasks": tasks, "images_per_task": args.images, "methods": methods,
                     "batch_size": args.batch_size, "dask_tasks": n_tasks, "threads": args.threads},
        "in_process_wall_s": round(in_process, 3),
        "workers": runs,
        "speedup": round(runs["1"]["wall_s"] / runs[str(args.workers)]["wall_s"], 3),
        "speedup_over_in_process": round(in_process / runs[str(args.workers)]["wall_s"], 3),
        "identical": identical,
        "provenance": provenance("cpu"),
    }
    print(f"{'run':<14}{'wall s':>10}{'compute s':>12}{'overhead/task s':>18}{'share':>8}")
    print(f"{'in-process':<14}{in_process:>10.2f}")
    for workers, r in runs.items():
        print(f"{workers + ' worker(s)':<14}{r['wall_s']:>10.2f}{r['task_compute_s']:>12.2f}"
              f"{r['overhead_per_task_s']:>18.3f}{r['overhead_share']:>8.3f}")
    print(f"speedup {args.workers} workers over 1: {result['speedup']:.2f}; identical tables: {identical}")
    if args.json:
        print(json.dumps(result))
    return 0 if identical else 1


def _warm_up() -> None:
    """On each worker: import what the tasks run (a cold worker's first task would pay for it)."""
    from ..experiments import iou  # noqa: F401


def _timed(client: Client, call: Any) -> tuple[Any, float, float]:
    """``call(client)``, its wall time and the summed compute time of its tasks on the workers."""
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        t0 = time.perf_counter()
        out = call(client)
        wall = time.perf_counter() - t0
    compute = sum(s["stop"] - s["start"] for task in stream.data for s in task["startstops"]
                  if s["action"] == "compute")
    return out, wall, compute
