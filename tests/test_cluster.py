"""chexp.cluster: scheduler specs and the clients they open."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chexp.cluster import SPEC_FORMS, SchedulerSpec, _slurm_cluster_class, open_client, parse_scheduler
from chexp.errors import ChexpError, InvalidParameterError, MissingDependencyError


@pytest.mark.parametrize(("text", "spec"), [
    (None, SchedulerSpec("sync")),
    ("", SchedulerSpec("sync")),
    ("sync", SchedulerSpec("sync")),
    ("local", SchedulerSpec("local")),
    ("local:3", SchedulerSpec("local", 3)),
    ("tcp://10.0.0.5:8786", SchedulerSpec("address", None, "tcp://10.0.0.5:8786")),
    ("tls://scheduler.example.org:8786", SchedulerSpec("address", None, "tls://scheduler.example.org:8786")),
    ("slurm", SchedulerSpec("slurm")),
    ("slurm:4", SchedulerSpec("slurm", 4)),
])
def test_parse_scheduler_forms(text: str | None, spec: SchedulerSpec) -> None:
    assert parse_scheduler(text) == spec


@pytest.mark.parametrize("text", ["locale", "local:", "local:x", "tcp://host", "http://host:80", "slurm:2:3", "pbs"])
def test_bad_spec_is_one_line_naming_the_forms(text: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        parse_scheduler(text)
    message = str(info.value)
    assert "\n" not in message and SPEC_FORMS in message and repr(text) in message


def test_zero_workers_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="at least 1"):
        parse_scheduler("local:0")


def test_sync_yields_no_client() -> None:
    with open_client(None) as client:
        assert client is None
    with open_client("sync") as client:
        assert client is None


def test_local_n_starts_n_worker_processes_and_closes_them() -> None:
    with open_client("local:2") as client:
        pids = client.run(os.getpid)  # worker address -> its process id
        threads = {w["nthreads"] for w in client.scheduler_info()["workers"].values()}
        cluster = client.cluster
    assert len(pids) == 2 and len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert threads == {1}
    assert cluster.status.name == "closed"


def test_local_workers_keep_the_default_allocator() -> None:
    """dask's MALLOC_TRIM_THRESHOLD_=65536 made torch ~1.8x slower; chexp's local workers go
    without it. In a fresh process: any default LocalCluster sets it in its parent's environment."""
    code = ("import os\nfrom chexp.cluster import open_client\nif __name__ == '__main__':\n"
            "    with open_client('local:1') as c:\n"
            "        print(sorted(set(map(str, c.run(os.environ.get, 'MALLOC_TRIM_THRESHOLD_').values()))))\n")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "['None']", out.stderr[-2000:]


def test_address_connects_and_leaves_the_cluster_running() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=None) as cluster:
        with open_client(cluster.scheduler_address) as client:
            assert client.submit(sum, [1, 2, 3]).result() == 6
        assert cluster.status.name == "running"


def test_slurm_without_dask_jobqueue_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'chexp\[slurm\]'") as info:
        with open_client("slurm"):
            pass  # pragma: no cover - never reached
    assert isinstance(info.value, ChexpError)


def test_slurm_uses_dask_jobqueue_slurm_cluster() -> None:
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    assert _slurm_cluster_class() is dask_jobqueue.SLURMCluster
