"""Static lambda slider data for notebooks (works in a static HTML page).

:func:`slider_data` returns the frames as uint8 arrays and one caption per frame
(lambda and prediction), ready for :func:`chexp.widgets.frame_slider`; :func:`lambda_slider`
calls it.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..errors import IndexOutOfRangeError, MissingDependencyError
from .animation import to_uint8
from .core import LatentShiftExplanation

__all__ = ["slider_data", "lambda_slider"]


def slider_data(explanation: LatentShiftExplanation, index: int = 0) -> tuple[np.ndarray, list[str]]:
    """Frames ``(T, H, W)`` uint8 and labels ``"lambda=-120  p=0.41"`` for one image (a bound
    frame whose search did not converge adds ``" (not converged)"``)."""
    if not 0 <= index < explanation.batch_size:
        raise IndexOutOfRangeError(f"index {index} out of range for a batch of {explanation.batch_size}")
    frames = to_uint8(explanation.frames[index, :, 0])
    labels = [
        f"lambda={float(lam):+.4g}  {explanation.target} p={float(p):.3f}" + explanation.frame_flag(index, t)
        for t, (lam, p) in enumerate(zip(explanation.lambdas[index], explanation.predictions[index], strict=True))
    ]
    return frames, labels


def lambda_slider(explanation: LatentShiftExplanation, index: int = 0, **kwargs):
    """A kernel-free slider over the frames (:func:`chexp.widgets.frame_slider`)."""
    try:
        widgets = importlib.import_module("chexp.widgets")
    except ImportError as err:  # ipywidgets missing
        raise MissingDependencyError(
            f"the lambda slider needs ipywidgets (pip install ipywidgets): {err}", name=err.name
        ) from err
    frames, labels = slider_data(explanation, index)
    kwargs.setdefault("description", "lambda")
    return widgets.frame_slider(frames, labels, **kwargs)
