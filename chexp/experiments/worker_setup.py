"""How a Dask worker process is prepared for torch work: one GPU each, and glibc's allocator.

:func:`chexp.experiments.batches.map_batches` registers :class:`TorchWorker` on its client:

* GPUs: a worker's ``CUDA_VISIBLE_DEVICES`` is set to one device (:func:`pinned_gpu`) before
  the worker first uses CUDA, so ``"cuda"`` (``"cuda:0"``) in that process is its own GPU.
* Allocator (:func:`allocate_for_torch`): Dask starts its worker processes with
  ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed memory back to the system at once). Setting it
  switches off glibc's dynamic mmap threshold, so every tensor above 128 KiB becomes a fresh
  ``mmap`` whose pages are faulted in and zeroed again at each allocation; the maps + IoU path
  then ran about 1.8 times slower in a worker than in a plain process (6.5 s against 10.5-13 s
  for the same images). The thresholds are set to the upper values glibc's dynamic rule would
  reach (mmap 32 MiB, trim 64 MiB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re

import torch
from distributed import Worker, WorkerPlugin

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "TorchWorker", "allocate_for_torch", "pinned_gpu"]

#: glibc's largest dynamic mmap threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``).
MMAP_THRESHOLD = 32 * 2**20
#: Trim threshold the dynamic rule pairs with it (twice the mmap threshold).
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
#: ``mallopt`` parameters (glibc ``malloc.h``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def pinned_gpu(worker_name: object, visible: str | None, n_gpus: int) -> str | None:
    """The GPU a worker uses: an entry of ``CUDA_VISIBLE_DEVICES``, or ``None`` for no change.

    Args:
        worker_name: the worker's name; its last integer is the worker's index (LocalCluster
            names workers 0, 1, ...; dask-jobqueue ``"SLURMCluster-3"``), 0 without one.
        visible: the worker's ``CUDA_VISIBLE_DEVICES`` (``None``: unset; a scheduler such as
            SLURM may have set it to the job's GPUs).
        n_gpus: GPUs the worker's process sees.

    Returns:
        the ``index % len(devices)``-th of the devices (``visible``'s entries, else ``"0"`` ..
        ``n_gpus - 1``); ``None`` when there is none.
    """
    devices = ([d.strip() for d in visible.split(",") if d.strip()] if visible is not None
               else [str(i) for i in range(n_gpus)])
    if not devices:
        return None
    found = re.findall(r"\d+", str(worker_name))
    return devices[(int(found[-1]) if found else 0) % len(devices)]


def allocate_for_torch() -> bool:
    """Set glibc's mmap and trim thresholds of this process to :data:`MMAP_THRESHOLD` and
    :data:`TRIM_THRESHOLD`. Returns whether it could (``False`` without glibc)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


class TorchWorker(WorkerPlugin):
    """Prepare a worker process for torch work: its GPU (:func:`pinned_gpu`; a worker that has
    already used CUDA, or sees no GPU, keeps its devices) and its allocator
    (:func:`allocate_for_torch`). Registered once per client (``idempotent``)."""

    name = "chexp-torch-worker"
    idempotent = True

    def setup(self, worker: Worker) -> None:
        allocate_for_torch()
        if torch.cuda.is_initialized():
            return
        gpu = pinned_gpu(worker.name, os.environ.get("CUDA_VISIBLE_DEVICES"), torch.cuda.device_count())
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
