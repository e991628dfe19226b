"""IoU, pointing game, boxes as masks, summaries: hand-made cases and outside checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchxrayvision as xrv
from scipy.stats import bootstrap

from chexp.errors import InputShapeError
from chexp.metrics.localization import box_to_mask, iou, pointing_game, summarize, top_k_mask


def test_iou_hand_made():
    mask = torch.zeros(4, 4)
    mask[0, :2] = 1  # 2 pixels
    m = torch.zeros(4, 4)
    m[0, 0], m[3, 3] = 5.0, 4.0  # top-2 = (0,0) and (3,3): overlap 1, union 3
    assert float(iou(m, mask)[0]) == pytest.approx(1 / 3)
    m[0, 1] = 4.5  # top-2 = (0,0), (0,1): perfect
    assert float(iou(m[None, None], mask[None, None])[0]) == 1.0
    # batch, and an empty mask gives NaN
    out = iou(torch.stack([m, m])[:, None], torch.stack([mask, torch.zeros(4, 4)])[:, None])
    assert out[0] == 1.0 and math.isnan(float(out[1]))
    with pytest.raises(InputShapeError):
        iou(torch.zeros(4, 4), torch.zeros(5, 5))


def test_top_k_ties_are_deterministic_row_major():
    flat = torch.ones(3, 3)
    kept = top_k_mask(flat, 4)[0]
    assert kept.flatten().tolist() == [True] * 4 + [False] * 5
    # constant map vs mask at the bottom right: top-p picks the first p pixels, IoU 0
    mask = torch.zeros(3, 3)
    mask[2, 1:] = 1
    assert float(iou(flat, mask)[0]) == 0.0


def test_pointing_game():
    maps = torch.zeros(2, 1, 8, 8)
    maps[0, 0, 2, 2] = 1
    maps[1, 0, 7, 7] = 1
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 1:4, 1:4] = 1
    assert pointing_game(maps, masks).tolist() == [True, False]
    masks2 = torch.zeros(2, 1, 8, 8)
    masks2[:, :, 5, 5] = 1
    assert pointing_game(maps, masks2, tolerance=2).tolist() == [False, True]


@pytest.mark.parametrize(
    "shape,box",
    [((300, 400), (120.0, 40.5, 90.0, 130.0)), ((500, 320), (10.0, 200.0, 250.0, 61.3)), ((256, 256), (0, 0, 40, 256))],
)
def test_box_to_mask_matches_xrv_crop_and_resize(shape, box):
    size = 64
    got = box_to_mask(box, shape, size).numpy()
    h, w = shape
    x, y, bw, bh = box
    full = np.zeros((1, h, w), dtype=np.float32)
    full[0, int(np.floor(y)) : int(np.ceil(y + bh)), int(np.floor(x)) : int(np.ceil(x + bw))] = 1
    cropped = xrv.datasets.XRayCenterCrop()(full)
    # torchxrayvision's own resize (bilinear, anti-aliased): agree except on the box border
    resized = xrv.datasets.XRayResizer(size)(cropped)[0] > 0.5
    assert (resized != got).sum() <= 2 * (size + size)  # at most a one-pixel border
    inter = (resized & got).sum() / (resized | got).sum()
    assert inter > 0.85
    # nearest-neighbour resize of the full mask: exactly equal
    from chexp.data.images import box_to_mask as full_res_box_to_mask

    np.testing.assert_array_equal(full_res_box_to_mask(box, shape, size), got)


def test_summarize_against_scipy_bootstrap():
    rng = np.random.default_rng(0)
    values = rng.beta(2, 5, size=80)
    s = summarize(np.append(values, np.nan), n_bootstrap=4000)
    assert s.n == 80 and s.mean == pytest.approx(values.mean()) and s.std == pytest.approx(values.std(ddof=1))
    ref = bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=1).confidence_interval
    assert s.ci_low == pytest.approx(ref.low, abs=0.005) and s.ci_high == pytest.approx(ref.high, abs=0.005)
    assert s.ci_low < s.mean < s.ci_high
    assert "CI" in str(s)
