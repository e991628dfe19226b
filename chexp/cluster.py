"""Dask clusters for batch work: ``chexp sweep``, ``chexp reproduce --scheduler`` and dataset-scale evaluation.

A *scheduler spec* names where tasks run (:data:`SPEC_FORMS`); :func:`open_client` then does:

``sync`` (or ``None``)
    nothing: the caller runs its tasks in this process, one after the other.
``local``, ``local:N``
    starts a :class:`distributed.LocalCluster` of one worker process per CPU core (or ``N``), one
    thread each, and closes it on exit.
``tcp://HOST:PORT`` (or ``tls://``)
    connects to a running scheduler (``dask scheduler`` / ``dask worker``, or any cluster manager);
    the cluster itself is left running on exit.
``slurm``, ``slurm:N``
    starts a :class:`dask_jobqueue.SLURMCluster` configured by dask's own configuration
    (``jobqueue.slurm`` in ``~/.config/dask/*.yaml``, see the README), scaled to ``N`` jobs
    (default 1), and closes it on exit; needs ``pip install 'chexp[slurm]'``.

Workers run chexp code: they need the same Python environment (chexp and its dependencies), the
same data folder (``CHEXP_DATA_DIR`` and the other ``CHEXP_*`` variables) and the folders the
tasks write to (a shared file system on a cluster). A local cluster's workers inherit this
process's environment.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:  # importing chexp.cluster stays light: distributed is imported when a cluster starts
    from distributed import Client

__all__ = ["SPEC_FORMS", "SchedulerSpec", "parse_scheduler", "open_client"]

#: The accepted scheduler specs, as error messages and ``--help`` show them.
SPEC_FORMS = "sync, local, local:N, tcp://HOST:PORT (or tls://), slurm, slurm:N"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("sync", re.compile(r"(?:sync|none)?", re.IGNORECASE)),
    ("local", re.compile(r"local(?::(?P<n>\d+))?", re.IGNORECASE)),
    ("address", re.compile(r"(?P<address>(?:tcp|tls)://[^\s:/]+:\d+)")),
    ("slurm", re.compile(r"slurm(?::(?P<n>\d+))?", re.IGNORECASE)),
)


@dataclass(frozen=True)
class SchedulerSpec:
    """A parsed scheduler spec.

    Attributes:
        kind: ``"sync"``, ``"local"``, ``"address"`` or ``"slurm"``.
        n: worker processes (``local:N``) or jobs (``slurm:N``); ``None``: the default (one
            worker per CPU core; one job).
        address: the scheduler's address (``kind == "address"``), else ``None``.
    """

    kind: str
    n: int | None = None
    address: str | None = None


def parse_scheduler(spec: str | None) -> SchedulerSpec:
    """Parse a scheduler spec (see the module docstring); ``None`` or ``""`` is ``sync``.

    Raises:
        InvalidParameterError: not one of :data:`SPEC_FORMS`, or ``N`` below 1.
    """
    text = (spec or "").strip()
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        groups = match.groupdict()
        n = int(groups["n"]) if groups.get("n") else None
        if n is not None and n < 1:
            raise InvalidParameterError(f"scheduler {spec!r}: N must be at least 1")
        return SchedulerSpec(kind, n, groups.get("address"))
    raise InvalidParameterError(f"scheduler {spec!r} is not one of: {SPEC_FORMS}")


@contextlib.contextmanager
def _no_client(spec: SchedulerSpec) -> Iterator[None]:
    yield None


@contextlib.contextmanager
def _local_client(spec: SchedulerSpec) -> Iterator[Client]:
    import dask
    from distributed import Client, LocalCluster

    n_workers = spec.n or os.cpu_count() or 1
    # dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's dynamic mmap
    # threshold and made torch about 1.8x slower on the workers (and in the notebook kernels they
    # start); chexp's workers keep the default allocator instead.
    # dashboard (when bokeh is installed) and HTTP endpoints on a free port: several clusters can run at once
    allocator = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    options = {"threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}
    with dask.config.set(allocator), LocalCluster(n_workers=n_workers, **options) as cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def _address_client(spec: SchedulerSpec) -> Iterator[Client]:
    from distributed import Client

    with Client(spec.address) as client:  # closes the connection only: the cluster keeps running
        yield client


def _slurm_cluster_class() -> Any:
    """``dask_jobqueue.SLURMCluster``.

    Raises:
        MissingDependencyError: dask-jobqueue is not installed.
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as err:
        raise MissingDependencyError(
            "--scheduler slurm needs dask-jobqueue: pip install 'chexp[slurm]'", name="dask_jobqueue"
        ) from err
    return SLURMCluster


@contextlib.contextmanager
def _slurm_client(spec: SchedulerSpec) -> Iterator[Client]:
    from distributed import Client

    cluster_class = _slurm_cluster_class()
    with cluster_class() as cluster:  # queue, cores, memory, ...: dask config ``jobqueue.slurm``
        cluster.scale(jobs=spec.n or 1)
        with Client(cluster) as client:
            yield client


_OPENERS: dict[str, Callable[[SchedulerSpec], contextlib.AbstractContextManager[Client | None]]] = {
    "sync": _no_client,
    "local": _local_client,
    "address": _address_client,
    "slurm": _slurm_client,
}


@contextlib.contextmanager
def open_client(scheduler: str | None) -> Iterator[Client | None]:
    """A :class:`distributed.Client` for the scheduler spec ``scheduler``, inside the ``with`` block.

    Yields ``None`` for ``sync`` / ``None`` (run in this process). A cluster this function
    started (``local``, ``slurm``) is closed on exit; an existing one (``tcp://...``) is only
    disconnected from.

    Raises:
        InvalidParameterError: a spec that is not one of :data:`SPEC_FORMS` (before anything starts).
        MissingDependencyError: ``slurm`` without dask-jobqueue installed.
    """
    spec = parse_scheduler(scheduler)
    with _OPENERS[spec.kind](spec) as client:
        yield client
