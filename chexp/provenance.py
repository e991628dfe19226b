"""What a result was computed with: package versions, machine, device, source commit, date.

:func:`provenance` is recorded in the JSON of every ``chexp bench`` and on the book's
"Build provenance" page (:func:`chexp.book.stage_book`).
"""

from __future__ import annotations

import datetime
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from . import __version__
from .paths import REPO_ROOT

__all__ = ["PACKAGES", "provenance", "package_version", "cpu_name", "gpu_names", "source_commit"]

#: Distributions whose versions are recorded (missing ones as ``"not installed"``).
PACKAGES = ("torch", "torchvision", "torchxrayvision", "captum", "zennit", "numpy")

def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def gpu_names() -> list[str]:
    """Names of the CUDA devices torch sees (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def source_commit(root: Path = REPO_ROOT) -> str | None:
    """``git rev-parse HEAD`` of ``root`` (with ``+dirty`` when tracked files are modified), or
    ``None`` when ``root`` is not a git checkout (an installed package) or git is missing."""
    if not (root / ".git").exists():
        return None

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  check=False, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return head + ("+dirty" if status else "")


def provenance(device: str | None = None) -> dict[str, str | list[str] | None]:
    """The versions and machine behind a result.

    Args:
        device: the torch device the result was computed on (``"cpu"``, ``"cuda:0"``, ...);
            recorded with the name of that device.

    Returns:
        A JSON-ready dict: ``chexp`` (package version), ``commit`` (git commit of the source
        tree, ``+dirty`` if modified; ``None`` outside a git checkout), ``python`` and the
        versions of :data:`PACKAGES`, ``platform``, ``cpu`` (model), ``gpus`` (CUDA device names),
        ``device`` (``device`` and its name, or ``None``), ``date`` (UTC, ISO 8601).
    """
    cpu = cpu_name()
    gpus = gpu_names()
    info: dict[str, str | list[str] | None] = {
        "chexp": __version__,
        "commit": source_commit(),
        "python": platform.python_version(),
        **{name: package_version(name) for name in PACKAGES},
        "platform": platform.platform(),
        "cpu": cpu,
        "gpus": gpus,
        "device": None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device is not None:
        info["device"] = f"{device} ({_device_name(device, cpu, gpus)})"
    return info


def _device_name(device: str, cpu: str, gpus: list[str]) -> str:
    kind, _, index = str(device).partition(":")
    if kind == "cuda" and gpus:
        return gpus[int(index) if index.isdigit() and int(index) < len(gpus) else 0]
    return cpu if kind == "cpu" else kind
