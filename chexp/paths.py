"""Where chexp keeps things on disk. Every location can be moved with an environment variable.

=====================  =============================================  ==============================
variable               what                                           default
=====================  =============================================  ==============================
``CHEXP_CACHE_DIR``    trained models, fitted estimators, downloads    ``~/.cache/chexp`` (OS cache)
``CHEXP_DATA_DIR``     downloaded data files, one folder per source    ``$CHEXP_CACHE_DIR/data``
``CHEXP_WEIGHTS_DIR``  pretrained torchxrayvision weights              ``~/.torchxrayvision/models_data``
=====================  =============================================  ==============================

The notebooks, the data manifests and the book's sources (``_config.yml``, ``_toc.yml``, ``book/``)
live at the top of the repository; a built wheel carries a copy of them as package data
(``chexp/_source/``, mapped in ``pyproject.toml``). :data:`SOURCE_ROOT` is whichever goes with the
imported ``chexp``: the packaged copy when there is one, else the checkout holding the package.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pooch

#: The folder holding the ``chexp`` package: the repository root in a checkout, ``site-packages``
#: when installed.
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Name of the package-data folder inside an installed ``chexp`` that mirrors the repository's
#: top-level sources.
PACKAGED_SOURCE = "_source"


def source_root() -> Path:
    """The folder with ``notebooks/``, ``data_manifests/``, ``_config.yml``, ``_toc.yml`` and ``book/``.

    ``chexp/_source`` of an installed wheel (read with :mod:`importlib.resources`), else the
    checkout's root (:data:`REPO_ROOT`: running from the repository, or an editable install).
    """
    packaged = resources.files(__package__).joinpath(PACKAGED_SOURCE)
    return Path(str(packaged)) if packaged.is_dir() else REPO_ROOT


#: :func:`source_root`, and its data manifests and notebooks.
SOURCE_ROOT = source_root()
MANIFEST_DIR = SOURCE_ROOT / "data_manifests"
NOTEBOOKS_DIR = SOURCE_ROOT / "notebooks"


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
    from .models._xrv_import import xrv  # imports torch: only when the weights are needed

    return Path(xrv.utils.get_cache_dir())


def models_dir() -> Path:
    """Folder of models trained by chexp, one sub-folder per configuration hash."""
    return cache_dir() / "models"
