"""Gifsplanation Fig. 1A/1B figures are legible: large frames with their difference to the
reconstruction, and optical-flow arrows long enough to see.

The explanation comes from a one-number autoencoder whose decoder draws a Gaussian blob at a
column set by the latent, and a classifier scoring the blob's column: the latent shift moves
the blob sideways by a known sub-pixel step per frame, as the phantom frames move (measured
there: at most 0.07 px between consecutive frames).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.quiver import Quiver

from chexp.latentshift import FixedRange, LatentShift, LatentShiftExplanation
from chexp.models.base import Autoencoder, Classifier
from chexp.plotting.latentshift import frame_picks, plot_flow, plot_frames

SIDE = 48
CENTRE = 24.0
PX_PER_Z = 6.0  # the blob moves this many columns per unit of latent


class BlobAE(Autoencoder):
    """``D(z)``: a Gaussian blob (sigma 5 px) centred at column ``24 + 6 z``; ``E(x) = 0``."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 1, dtype=x.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        rows, cols = torch.meshgrid(torch.arange(SIDE, dtype=z.dtype), torch.arange(SIDE, dtype=z.dtype),
                                    indexing="ij")
        centre = CENTRE + PX_PER_Z * z[:, :1, None]
        blob = torch.exp(-((cols - centre) ** 2 + (rows - CENTRE) ** 2) / 50.0)
        return (2048.0 * blob - 1024.0)[:, None]


class ColumnClassifier(Classifier):
    """Score: the image's intensity-weighted column minus the centre, in blob steps (``dz = 1``)."""

    def __init__(self) -> None:
        super().__init__(["finding"], output="score")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        weight = x[:, 0] + 1024.0
        cols = torch.arange(SIDE, dtype=x.dtype)
        column = (weight * cols).sum((1, 2)) / weight.sum((1, 2))
        return ((column - CENTRE) / PX_PER_Z)[:, None]


def _explanation(lam: float, n_frames: int = 9) -> LatentShiftExplanation:
    image = BlobAE().decode(torch.zeros(1, 1))
    return LatentShift(ColumnClassifier(), BlobAE(), search=FixedRange(-lam, lam),
                       n_frames=n_frames).explain(image, "finding")


@pytest.fixture(scope="module")
def subpixel() -> LatentShiftExplanation:
    """Nine frames; the blob moves 1.2 px in all, 0.15 px per frame."""
    return _explanation(0.1)


def _inches(ax) -> tuple[float, float]:
    box = ax.get_window_extent()
    return box.width / ax.figure.dpi, box.height / ax.figure.dpi


def test_frame_picks_are_the_bounds_and_evenly_between():
    assert frame_picks(9, 5).tolist() == [0, 2, 4, 6, 8]
    assert frame_picks(3, 5).tolist() == [0, 1, 2]
    assert frame_picks(10, 5)[[0, -1]].tolist() == [0, 9]


def test_frames_are_large_with_a_symmetric_difference_row(subpixel):
    fig = plot_frames(subpixel)
    fig.canvas.draw()
    images = [ax for ax in fig.axes if ax.images]
    frames, diffs = images[:5], images[5:10]
    assert len(images) == 10
    for ax in images:  # each frame at least 2.2 inches square
        width, height = _inches(ax)
        assert width >= 2.2 - 1e-6 and height >= 2.2 - 1e-6, (width, height)
    # the frames: the bounds and evenly between, titled with lambda and prediction
    lams = np.linspace(-0.1, 0.1, 5)
    for ax, lam in zip(frames, lams, strict=True):
        title = ax.get_title()
        assert f"λ = {lam:+.3g}" in title and "p = " in title
    # the difference row: frame - D(E(x)), on a diverging colormap symmetric around 0
    recon = subpixel.reconstruction[0, 0].numpy()
    limits = {ax.images[0].get_clim() for ax in diffs}
    assert len(limits) == 1
    low, high = limits.pop()
    assert high > 0 and low == -high
    for ax, k in zip(diffs, [0, 2, 4, 6, 8], strict=True):
        shown = ax.images[0]
        assert shown.get_cmap().name == "RdBu_r"
        np.testing.assert_allclose(shown.get_array(), subpixel.frames[0, k, 0].numpy() - recon, atol=1e-3)
    assert high == pytest.approx(max(np.abs(ax.images[0].get_array()).max() for ax in diffs))
    # one shared colorbar for the difference row
    bars = [ax for ax in fig.axes if not ax.images and "intensity" in ax.get_ylabel()]
    assert len(bars) == 1
    plt.close(fig)


def _arrow_lengths_px(ax) -> tuple[np.ndarray, np.ndarray]:
    """Displayed length (pixels) and column component of each arrow of the axis' quiver."""
    (quiver,) = [c for c in ax.collections if isinstance(c, Quiver)]
    assert quiver.scale_units == "xy"
    start = quiver.get_offsets()
    u, v = np.asarray(quiver.U), np.asarray(quiver.V)
    end = start + np.stack([u, v], axis=1) / quiver.scale
    display = ax.transData.transform
    return np.hypot(*(display(end) - display(start)).T), u


def test_flow_arrows_are_visible_at_page_size(subpixel):
    fig = plot_flow(subpixel, method="tvl1")
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4
    for ax in panels:
        assert min(_inches(ax)) >= 2.8 - 1e-6
        lengths, columns = _arrow_lengths_px(ax)
        # arrows where the blob moves, each at least 8 display pixels, the longest >= 30
        assert len(lengths) >= 4 and lengths.min() >= 8 and lengths.max() >= 30, lengths
        # they point the way the blob moves: to the right (+column)
        assert np.sum(columns * lengths) > 0.5 * np.sum(np.abs(columns) * lengths)
    assert "magnified" in fig._suptitle.get_text()
    plt.close(fig)
