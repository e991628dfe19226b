"""Explain your own radiographs with both papers' methods (``chexp explain``).

:func:`explain` reads image files or folders (PNG, JPEG, DICOM; :mod:`.inputs`), loads the model
(:mod:`.models`: chexp's, torchxrayvision's or the user's), runs the methods of
:data:`chexp.methods.METHODS` (:mod:`.run`) and writes maps, animations and self-contained HTML
reports (:mod:`.report`)::

    from chexp.explain import explain
    run = explain("scans/", model="phantom", targets="top", methods=["latentshift", "iba", "gradcam"],
                  out="explained")
    run.images[0].latentshift["Cardiomegaly"].explanation.bounds

The package is callable: ``chexp.explain(...)`` is :func:`explain` (``import chexp`` stays light:
the package is imported on first use of ``chexp.explain``).
"""

import sys
import types
from typing import Any

from .models import ExplainModels, UserClassifier, load_models, load_user_model
from .run import ExplainRun, ImageResult, LatentShiftResult, MethodMap, explain, resolve_targets

__all__ = [
    "ExplainModels", "ExplainRun", "ImageResult", "LatentShiftResult", "MethodMap", "UserClassifier", "explain",
    "load_models", "load_user_model", "resolve_targets",
]


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`explain` (``chexp.explain(...)``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> ExplainRun:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
