"""Progress bars: :func:`tqdm` is ``tqdm.auto.tqdm`` that also honours ``TQDM_DISABLE``.

tqdm reads ``TQDM_DISABLE`` only as a default, and chexp always passes ``disable=``
explicitly (from its ``progress=`` arguments), and the notebook variant ignores the variable
altogether. Every chexp bar goes through this function, so ``TQDM_DISABLE=1`` switches all of
them off: :mod:`chexp.reproduce` sets it for the kernels that run the book's notebooks, so that
no bar of a model trained inside a notebook ends up in a rendered page.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm as _tqdm

_OFF = {"1", "true", "yes", "on"}


def disabled_by_environment() -> bool:
    """True when ``TQDM_DISABLE`` is set to 1/true/yes/on (any case)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF


def tqdm(*args: Any, disable: bool | None = False, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(*args, disable=..., **kwargs)``, disabled also by ``TQDM_DISABLE``
    (``disable=None`` keeps tqdm's meaning: off when the output is not a terminal)."""
    return _tqdm(*args, disable=True if disabled_by_environment() else disable, **kwargs)
