"""Where chexp keeps things on disk. Every location can be moved with an environment variable.

=====================  =============================================  ==============================
variable               what                                           default
=====================  =============================================  ==============================
``CHEXP_CACHE_DIR``    trained models, fitted estimators, downloads    ``~/.cache/chexp`` (OS cache)
``CHEXP_DATA_DIR``     downloaded data files, one folder per source    ``$CHEXP_CACHE_DIR/data``
``CHEXP_WEIGHTS_DIR``  pretrained torchxrayvision weights              ``~/.torchxrayvision/models_data``
=====================  =============================================  ==============================
"""

from __future__ import annotations

import os
from pathlib import Path

import pooch

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_DIR = REPO_ROOT / "data_manifests"


def cache_dir() -> Path:
    """Root of chexp's cache (``$CHEXP_CACHE_DIR``)."""
    env = os.environ.get("CHEXP_CACHE_DIR")
    return Path(env).expanduser() if env else Path(pooch.os_cache("chexp"))


def data_dir() -> Path:
    """Folder of downloaded data (``$CHEXP_DATA_DIR``); one sub-folder per remote source."""
    env = os.environ.get("CHEXP_DATA_DIR")
    return Path(env).expanduser() if env else cache_dir() / "data"


def weights_dir() -> Path:
    """Folder of pretrained torchxrayvision weights (``$CHEXP_WEIGHTS_DIR``).

    The default is torchxrayvision's own cache (``torchxrayvision.utils.get_cache_dir()``), so
    weights already downloaded by torchxrayvision are found.
    """
    env = os.environ.get("CHEXP_WEIGHTS_DIR")
    if env:
        return Path(env).expanduser()
    import torchxrayvision as xrv  # imports torch: only when the weights are needed

    return Path(xrv.utils.get_cache_dir())


def models_dir() -> Path:
    """Folder of models trained by chexp, one sub-folder per configuration hash."""
    return cache_dir() / "models"
