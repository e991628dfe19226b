"""Frame sliders that keep working in a static HTML page (no kernel).

Every frame is rendered to PNG bytes up front and becomes an :class:`ipywidgets.Image`
child of an :class:`ipywidgets.Stack`. A slider, a ``Play`` button and a second stack of
per-frame captions are tied together with :func:`ipywidgets.jslink`, which runs in the
browser: the saved widget state of an executed notebook is enough for the Jupyter Book
page to play the frames. No Python callback (``observe``, ``interact``) is involved.

With ipywidgets 7 (Google Colab ships 7.7.1) there is no ``Stack``: each stack is then a
:class:`KernelStack`, which shows one child at a time and is switched by a Python link, so the
slider and the play button still scrub the frames while the notebook's kernel runs (the static
book is built with ipywidgets 8).

Typical use, with Latent Shift frames ``(T, H, W)`` and their lambdas and predictions::

    frame_slider(frames, labels=[f"lambda={l:+.0f}  p={p:.2f}" for l, p in zip(lams, preds)])
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets
from PIL import Image as PILImage

from chexp.errors import InputRangeError, InputShapeError, InvalidParameterError, InvalidTypeError

__all__ = ["FrameSlider", "KernelStack", "frame_slider", "figure_slider", "frames_to_png"]


def _is_figure(obj: object) -> bool:
    return hasattr(obj, "savefig") and hasattr(obj, "canvas")


def _figures_to_png(figures: Sequence[Any], dpi: int | None, close: bool) -> list[bytes]:
    import matplotlib.pyplot as plt

    pngs: list[bytes] = []
    for index, fig in enumerate(figures):
        if not _is_figure(fig):
            raise InvalidTypeError(
                f"frame {index} is a {type(fig).__name__}, expected a matplotlib Figure "
                "(or give all frames as one numpy array)"
            )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        pngs.append(buffer.getvalue())
        if close:
            plt.close(fig)
    return pngs


def _array_to_uint8(frames: np.ndarray, vmin: float | None, vmax: float | None) -> np.ndarray:
    if frames.dtype == np.uint8:
        return frames
    values = frames.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputRangeError("frames contain NaN or infinite values")
    low = float(values.min()) if vmin is None else float(vmin)
    high = float(values.max()) if vmax is None else float(vmax)
    if high < low:
        raise InvalidParameterError(f"vmax ({high}) must not be below vmin ({low})")
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip(np.round((values - low) * scale), 0, 255).astype(np.uint8)


def frames_to_png(
    frames: np.ndarray | Sequence[Any],
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    dpi: int | None = None,
    close_figures: bool = True,
) -> list[bytes]:
    """Encode frames as PNG bytes, one per frame.

    Args:
        frames: a numpy array ``(T, H, W)`` (grayscale), ``(T, H, W, 3)`` (RGB) or
            ``(T, H, W, 4)`` (RGBA); or a sequence of matplotlib figures. Arrays that are
            not ``uint8`` are mapped linearly from ``[vmin, vmax]`` to ``[0, 255]``; by
            default ``vmin``/``vmax`` are the minimum/maximum over *all* frames, so that
            brightness is comparable across frames (what a Latent Shift sequence needs).
        vmin, vmax: intensity window for float arrays.
        dpi: resolution for figures (matplotlib's default when ``None``).
        close_figures: close each figure after encoding it, so a notebook does not
            display it a second time.

    Returns:
        ``T`` PNG byte strings.

    Raises:
        InputShapeError: no frames, or an array of the wrong rank / channel count.
        InputRangeError: NaN or infinite values.
        InvalidTypeError: a sequence element that is not a matplotlib figure.
    """
    if isinstance(frames, np.ndarray) or (
        isinstance(frames, Sequence) and len(frames) > 0 and isinstance(frames[0], np.ndarray)
    ):
        array = np.asarray(frames)
        if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (3, 4)):
            raise InputShapeError(
                f"frames must have shape (T, H, W), (T, H, W, 3) or (T, H, W, 4); got {array.shape}"
            )
        if array.shape[0] == 0 or array.shape[1] == 0 or array.shape[2] == 0:
            raise InputShapeError(f"frames must be non-empty; got shape {array.shape}")
        pixels = _array_to_uint8(array, vmin, vmax)
        pngs = []
        for frame in pixels:
            buffer = io.BytesIO()
            PILImage.fromarray(frame).save(buffer, format="PNG")
            pngs.append(buffer.getvalue())
        return pngs
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence):
        raise InvalidTypeError(
            f"frames must be a numpy array or a sequence of matplotlib figures, got {type(frames).__name__}"
        )
    if len(frames) == 0:
        raise InputShapeError("frames is empty: give at least one frame")
    return _figures_to_png(frames, dpi, close_figures)


class KernelStack(widgets.Box):
    """Stand-in for ipywidgets 8's ``Stack`` under ipywidgets 7: of its ``children``, only
    ``children[selected_index]`` is shown (the others get ``layout.display = "none"``).

    ``selected_index`` is a Python-side trait: switching runs in the kernel.
    """

    selected_index = traitlets.Int(0)

    def __init__(self, children: Sequence[widgets.Widget], selected_index: int = 0) -> None:
        super().__init__(list(children))
        self.selected_index = selected_index
        self._show({"new": selected_index})

    @traitlets.observe("selected_index")
    def _show(self, change: dict[str, Any]) -> None:
        for index, child in enumerate(self.children):
            child.layout.display = None if index == change["new"] else "none"


class FrameSlider(widgets.VBox):
    """A ``VBox`` holding a play button, a slider, a caption and the frame images.

    Attributes:
        play: the ``Play`` widget (its ``value`` is jslinked to ``slider.value``).
        slider: an ``IntSlider`` over frame indices ``0 .. T-1``.
        images: ``Stack`` of ``Image`` widgets, one per frame; ``selected_index`` jslinked
            to ``slider.value`` (with ipywidgets 7: a :class:`KernelStack`, linked in Python).
        captions: ``Stack`` of ``HTML`` captions, one per frame, linked the same way.
        links: the three links (``jslink`` widgets; the two stack links are ``traitlets.link``
            objects with ipywidgets 7).
    """

    def __init__(
        self,
        pngs: Sequence[bytes],
        labels: Sequence[str],
        *,
        description: str,
        width: int | str,
        interval: int,
    ) -> None:
        count = len(pngs)
        width_css = f"{width}px" if isinstance(width, int) else str(width)
        image_widgets = [
            widgets.Image(value=png, format="png", layout=widgets.Layout(width=width_css))
            for png in pngs
        ]
        caption_widgets = [widgets.HTML(value=_escape(label)) for label in labels]
        # ipywidgets 8: switched in the browser (works in the static book); 7: in the kernel.
        stack, link = (widgets.Stack, widgets.jslink) if hasattr(widgets, "Stack") else (KernelStack, widgets.link)
        self.images = stack(image_widgets, selected_index=0)
        self.captions = stack(caption_widgets, selected_index=0)
        self.slider = widgets.IntSlider(
            value=0,
            min=0,
            max=count - 1,
            step=1,
            description=description,
            readout=False,
            continuous_update=True,
            layout=widgets.Layout(width=width_css),
        )
        self.play = widgets.Play(
            value=0, min=0, max=count - 1, step=1, interval=interval, description="play"
        )
        self.links = (
            widgets.jslink((self.play, "value"), (self.slider, "value")),
            link((self.slider, "value"), (self.images, "selected_index")),
            link((self.slider, "value"), (self.captions, "selected_index")),
        )
        controls = widgets.HBox([self.play, self.slider])
        super().__init__([controls, self.captions, self.images])

    @property
    def frame_count(self) -> int:
        """Number of frames ``T``."""
        return len(self.images.children)


def _escape(text: str) -> str:
    import html

    return f"<code>{html.escape(text)}</code>"


def _check_labels(labels: Sequence[str] | None, count: int) -> list[str]:
    if labels is None:
        return [f"frame {index}" for index in range(count)]
    if isinstance(labels, str):
        raise InvalidTypeError(f"labels must be a sequence of strings, not one string ({labels!r})")
    labels = [str(label) for label in labels]
    if len(labels) != count:
        raise InvalidParameterError(
            f"labels must have one entry per frame: got {len(labels)} labels for {count} frames"
        )
    return labels


def frame_slider(
    frames: np.ndarray | Sequence[Any],
    labels: Sequence[str] | None = None,
    description: str = "lambda",
    width: int | str = 384,
    *,
    interval: int = 400,
    vmin: float | None = None,
    vmax: float | None = None,
    dpi: int | None = None,
) -> FrameSlider:
    """A slider over precomputed frames that works without a kernel.

    Args:
        frames: ``(T, H, W)``, ``(T, H, W, 3)`` or ``(T, H, W, 4)`` numpy array, or a
            sequence of ``T`` matplotlib figures (closed after encoding).
        labels: ``T`` captions (for example ``"lambda=-20  p=0.41"``), shown above the
            image; ``"frame i"`` when omitted.
        description: slider label.
        width: image and slider width, pixels (int) or a CSS length (str).
        interval: milliseconds between frames when playing.
        vmin, vmax: intensity window for float arrays (default: global min/max).
        dpi: resolution used for figures.

    Returns:
        A :class:`FrameSlider` (an ``ipywidgets.VBox``); display it as the last
        expression of a cell.

    Raises:
        InputShapeError: no frames or a badly shaped array.
        InvalidParameterError: ``labels`` does not have one entry per frame.
    """
    if isinstance(frames, np.ndarray) and frames.ndim >= 1 and frames.shape[0] == 0:
        raise InputShapeError("frames is empty: give at least one frame")
    if not isinstance(frames, np.ndarray) and isinstance(frames, Sequence) and len(frames) == 0:
        raise InputShapeError("frames is empty: give at least one frame")
    count = frames.shape[0] if isinstance(frames, np.ndarray) else len(frames)
    # Labels are checked before any (possibly slow) PNG encoding.
    checked = _check_labels(labels, count)
    pngs = frames_to_png(frames, vmin=vmin, vmax=vmax, dpi=dpi)
    return FrameSlider(pngs, checked, description=description, width=width, interval=interval)


def figure_slider(
    figures: Sequence[Any],
    labels: Sequence[str] | None = None,
    description: str = "frame",
    width: int | str = 480,
    *,
    interval: int = 400,
    dpi: int | None = 96,
) -> FrameSlider:
    """:func:`frame_slider` for a list of matplotlib figures (closed after encoding)."""
    if isinstance(figures, np.ndarray):
        raise InvalidTypeError("figure_slider takes matplotlib figures, got a numpy array; use frame_slider for arrays")
    return frame_slider(
        figures, labels, description=description, width=width, interval=interval, dpi=dpi
    )
