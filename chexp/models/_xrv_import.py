"""torchxrayvision, imported without touching the process's warning filters.

When ``torchxrayvision.models`` is first imported it runs ``warnings.filterwarnings("ignore")``,
which silences every warning of the process from then on, chexp's own
(:class:`~chexp.errors.ChexpWarning` and its subclasses) included. Every chexp module takes
torchxrayvision from here (``from ..models._xrv_import import xrv``; its submodules as attributes,
``xrv.utils``, ``xrv.baseline_models.jfhealthcare``), so that the first import runs inside
:func:`warnings.catch_warnings` and :data:`warnings.filters` is the same after it as before.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    import torchxrayvision as xrv

__all__ = ["xrv"]
