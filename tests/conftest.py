"""Shared pytest fixtures.

``shared_data`` gives the folder of offline real data (``../shared/data`` beside the
repository, or ``$CHEXP_SHARED_DATA``). When it is missing, tests that use it are
skipped, except when ``CHEXP_REQUIRE_DATA=1`` (set by ``.ci/run``): then they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("CHEXP_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if not (path / "covid-chestxray-dataset" / "metadata.csv").is_file():
        message = f"offline real data not found at {path} (set CHEXP_SHARED_DATA)"
        if os.environ.get("CHEXP_REQUIRE_DATA") == "1":
            pytest.fail(message + "; CHEXP_REQUIRE_DATA=1 requires it")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
