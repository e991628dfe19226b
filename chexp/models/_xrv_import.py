"""torchxrayvision, imported without its process-wide ``warnings.filterwarnings("ignore")``.

When ``torchxrayvision.models`` is first imported it runs ``warnings.filterwarnings("ignore")``,
which would silence every warning of the process from then on, chexp's own
(:class:`~chexp.errors.ChexpWarning` and its subclasses) included. Every chexp module takes
torchxrayvision from here (``from ..models._xrv_import import xrv``; its submodules as attributes,
``xrv.utils``, ``xrv.baseline_models.jfhealthcare``), so that the first import runs inside
:func:`without_ignore_all`: :data:`warnings.filters` is the same after it as before, but for the
filters that the libraries first imported with it (requests, urllib3, ...) add for their own
warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: The filter of ``warnings.filterwarnings("ignore")`` (or ``simplefilter("ignore")``).
IGNORE_ALL = ("ignore", None, Warning, None, 0)


@contextmanager
def without_ignore_all() -> Iterator[None]:
    """Run a block (an import) inside :func:`warnings.catch_warnings`, then add again the filters
    it added, all but :data:`IGNORE_ALL`, in front and in their order.

    A message or module pattern is added again through :func:`warnings.filterwarnings`, which
    compiles it as that function does (the message case-insensitive).
    """
    with warnings.catch_warnings():
        before = list(warnings.filters)
        yield
        added = [f for f in warnings.filters if f not in before and f != IGNORE_ALL]
    for action, message, category, module, lineno in reversed(added):
        warnings.filterwarnings(action, message.pattern if message else "", category,
                                module.pattern if module else "", lineno)


with without_ignore_all():
    import torchxrayvision as xrv

__all__ = ["IGNORE_ALL", "without_ignore_all", "xrv"]
