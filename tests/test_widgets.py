"""Tests of chexp.widgets: structure of the kernel-free frame slider and input checks."""

from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ipywidgets.widgets.widget_link import Link  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from chexp.errors import InputRangeError, InputShapeError  # noqa: E402
from chexp.widgets import FrameSlider, KernelStack, figure_slider, frame_slider, frames_to_png  # noqa: E402


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)))


#: ipywidgets 8 has Stack; with ipywidgets 7 (Google Colab) chexp uses its KernelStack.
STACK = getattr(widgets, "Stack", KernelStack)


def _link_pairs(slider: FrameSlider) -> set[tuple[int, str, int, str]]:
    return {
        (id(link.source[0]), link.source[1], id(link.target[0]), link.target[1])
        for link in slider.links
    }


def test_structure_of_grayscale_slider() -> None:
    frames = np.linspace(-1024, 1024, 5 * 8 * 6, dtype=np.float32).reshape(5, 8, 6)
    labels = [f"lambda={lam:+d}" for lam in (-40, -30, -20, -10, 0)]
    slider = frame_slider(frames, labels=labels, description="lambda")

    assert isinstance(slider, widgets.VBox)
    assert isinstance(slider.images, STACK)
    assert slider.frame_count == 5
    assert len(slider.images.children) == 5
    assert all(isinstance(child, widgets.Image) for child in slider.images.children)
    assert all(child.format == "png" for child in slider.images.children)
    assert len(slider.captions.children) == 5
    assert [child.value for child in slider.captions.children] == [f"<code>{label}</code>" for label in labels]
    assert (slider.slider.min, slider.slider.max, slider.slider.step, slider.slider.value) == (0, 4, 1, 0)
    assert (slider.play.min, slider.play.max) == (0, 4)
    assert slider.slider.description == "lambda"
    # The three links: play -> slider -> image stack and caption stack (in the browser with
    # ipywidgets 8; the two stack links in the kernel with ipywidgets 7).
    assert isinstance(slider.links[0], Link)
    assert all(isinstance(link, Link) for link in slider.links) == (STACK is not KernelStack)
    assert _link_pairs(slider) == {
        (id(slider.play), "value", id(slider.slider), "value"),
        (id(slider.slider), "value", id(slider.images), "selected_index"),
        (id(slider.slider), "value", id(slider.captions), "selected_index"),
    }
    # The widget tree shown on the page contains the controls, captions and images.
    controls, captions, images = slider.children
    assert list(controls.children) == [slider.play, slider.slider]
    assert captions is slider.captions and images is slider.images


def test_frames_share_one_intensity_window() -> None:
    # Frame k is constant k; with the global window [0, 3] they map to 0, 85, 170, 255.
    frames = np.stack([np.full((4, 4), k, dtype=np.float64) for k in range(4)])
    slider = frame_slider(frames)
    values = [int(_decode(child.value)[0, 0]) for child in slider.images.children]
    assert values == [0, 85, 170, 255]
    # An explicit window is honoured (value 1 in [0, 2] -> 128 after rounding).
    png = frames_to_png(np.ones((1, 2, 2)), vmin=0.0, vmax=2.0)[0]
    assert int(_decode(png)[0, 0]) == 128


def test_rgb_and_uint8_frames_round_trip() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 5, 7, 3), dtype=np.uint8)
    slider = frame_slider(frames, labels=["a", "b", "c"])
    for frame, child in zip(frames, slider.images.children, strict=True):
        np.testing.assert_array_equal(_decode(child.value), frame)


def test_figure_slider_renders_and_closes_figures() -> None:
    figures = []
    for k in range(3):
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.imshow(np.full((2, 2), k), vmin=0, vmax=2)
        figures.append(fig)
    slider = figure_slider(figures, labels=["0", "1", "2"])
    assert slider.frame_count == 3
    assert all(_decode(child.value).ndim == 3 for child in slider.images.children)
    assert not any(plt.fignum_exists(fig.number) for fig in figures)


@pytest.mark.parametrize(
    "frames",
    [np.zeros((0, 4, 4)), [], np.zeros((4, 4)), np.zeros((2, 4, 4, 2)), np.zeros((2, 3, 4, 4, 1))],
    ids=["empty-array", "empty-list", "2d", "two-channels", "5d"],
)
def test_bad_frames_raise_shape_error(frames: object) -> None:
    with pytest.raises(InputShapeError):
        frame_slider(frames)


def test_label_count_must_match() -> None:
    with pytest.raises(ValueError, match="3 labels for 2 frames"):
        frame_slider(np.zeros((2, 4, 4)), labels=["a", "b", "c"])
    with pytest.raises(TypeError, match="sequence of strings"):
        frame_slider(np.zeros((2, 4, 4)), labels="ab")


def test_non_finite_and_non_figure_inputs() -> None:
    frames = np.zeros((2, 4, 4))
    frames[1, 0, 0] = np.nan
    with pytest.raises(InputRangeError, match="NaN"):
        frame_slider(frames)
    with pytest.raises(TypeError, match="matplotlib Figure"):
        frame_slider(["not a figure"])
    with pytest.raises(TypeError, match="figure_slider takes matplotlib figures"):
        figure_slider(np.zeros((2, 4, 4)))


def test_without_stack_the_slider_switches_frames_in_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    # ipywidgets 7 (Google Colab's 7.7.1) has no Stack: the slider must still scrub the frames.
    if hasattr(widgets, "Stack"):
        monkeypatch.delattr(widgets, "Stack")
    frames = np.stack([np.full((4, 4), k, dtype=np.uint8) for k in (0, 50, 100)])
    slider = frame_slider(frames, labels=["a", "b", "c"])
    assert isinstance(slider.images, KernelStack) and isinstance(slider.captions, KernelStack)
    assert slider.frame_count == 3 and len(slider.images.children) == 3

    def shown() -> tuple[int, str]:
        (image,) = [c for c in slider.images.children if c.layout.display != "none"]
        (caption,) = [c for c in slider.captions.children if c.layout.display != "none"]
        return int(_decode(image.value)[0, 0]), caption.value

    seen = [shown()]
    for value in (2, 1):
        slider.slider.value = value  # what dragging the slider (or the play button, jslinked) does
        seen.append(shown())
    assert seen == [(0, "<code>a</code>"), (100, "<code>c</code>"), (50, "<code>b</code>")]
    controls, captions, images = slider.children
    assert list(controls.children) == [slider.play, slider.slider] and images is slider.images
    assert isinstance(slider.links[0], Link)  # play -> slider still runs in the browser
