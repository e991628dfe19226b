"""One GPU per Dask worker process: :func:`pinned_gpu` chooses it, :class:`PinGpu` applies it.

:func:`chexp.experiments.batches.map_batches` registers :class:`PinGpu` on its client. A
worker's ``CUDA_VISIBLE_DEVICES`` is set to one device before the worker first uses CUDA, so
``"cuda"`` (``"cuda:0"``) in that process is its own GPU.
"""

from __future__ import annotations

import os
import re

import torch
from distributed import Worker, WorkerPlugin

__all__ = ["PinGpu", "pinned_gpu"]


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


class PinGpu(WorkerPlugin):
    """Pin each worker process to the GPU :func:`pinned_gpu` chooses (``CUDA_VISIBLE_DEVICES``).

    A worker that has already used CUDA (the setting would have no effect) or sees no GPU is
    left alone. Registered once per client (``idempotent``).
    """

    name = "chexp-pin-gpu"
    idempotent = True

    def setup(self, worker: Worker) -> None:
        if torch.cuda.is_initialized():
            return
        gpu = pinned_gpu(worker.name, os.environ.get("CUDA_VISIBLE_DEVICES"), torch.cuda.device_count())
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
