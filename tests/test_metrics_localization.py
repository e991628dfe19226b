"""IoU, pointing game, boxes as masks, summaries: hand-made cases and outside checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchxrayvision as xrv
from scipy.stats import bootstrap

from chexp.errors import InputShapeError, InvalidParameterError, UnknownNameError
from chexp.metrics.localization import (
    MASS_MODES,
    box_to_mask,
    in_mask_fraction,
    iou,
    pointing_game,
    summarize,
    top_k_mask,
    top_k_weights,
)


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


def _plateau_map() -> tuple[torch.Tensor, torch.Tensor]:
    """8 x 8: a mask of 12 pixels (rows 0-2, columns 0-3); the map is 1 on 4 mask pixels and 0
    elsewhere, so 8 of the 12 slots fall on the 60-pixel zero plateau."""
    mask = torch.zeros(8, 8)
    mask[:3, :4] = 1
    m = torch.zeros(8, 8)
    m[0, :4] = 1.0
    m[7, 7] = 0.5  # a third value: not a binary map
    return m, mask


def test_iou_of_a_plateau_does_not_depend_on_where_the_tie_lies():
    m, mask = _plateau_map()
    # fractional credit: the 59 zero pixels share 7 slots; 8 of them lie in the mask
    inter = 4 + 8 * 7 / 59
    expected = inter / (24 - inter)
    assert float(iou(m, mask)[0]) == pytest.approx(expected, rel=1e-12)
    # the same map and mask at the bottom right (both flipped), and transposed: the same IoU
    for f in (lambda t: t.flip(0, 1), lambda t: t.flip(1), lambda t: t.T):
        assert float(iou(f(m), f(mask))[0]) == pytest.approx(expected, rel=1e-12)
    # a batch of random maps with plateaus: flipping each map with its mask changes nothing
    gen = torch.Generator().manual_seed(0)
    maps = torch.relu(torch.randn(6, 1, 16, 16, generator=gen))  # ~half the pixels tie at 0
    masks = torch.zeros(6, 1, 16, 16)
    masks[:, :, 2:13, 3:11] = 1
    np.testing.assert_allclose(iou(maps.flip(-1, -2), masks.flip(-1, -2)), iou(maps, masks), rtol=1e-12)


def test_top_k_weights_are_the_mean_over_every_tie_break():
    from itertools import combinations

    m = torch.tensor([[5.0, 2.0, 0.0], [2.0, 7.0, 2.0], [2.0, 1.0, 2.0]])
    w = top_k_weights(m, 4)[0]
    # 7 and 5 are in; two slots left among the five 2s: each is in with probability 2/5
    tied = [(0, 1), (1, 0), (1, 2), (2, 0), (2, 2)]
    mean = torch.zeros(3, 3, dtype=torch.float64)
    picks = list(combinations(tied, 2))
    for pick in picks:
        for rc in [(0, 0), (1, 1), *pick]:
            mean[rc] += 1 / len(picks)
    torch.testing.assert_close(w, mean)
    assert float(w.sum()) == pytest.approx(4.0)
    # per-map k, and k = 0 keeps nothing
    ws = top_k_weights(torch.stack([m, m]), torch.tensor([0, 9]))
    assert float(ws[0].sum()) == 0.0 and bool((ws[1] == 1).all())
    with pytest.raises(InvalidParameterError):
        top_k_weights(m, 10)


def test_constant_map_has_the_analytic_expected_iou():
    # every pixel ties: each is in the top p with probability p / N; I = p^2 / N
    n, p = 100, 20
    mask = torch.zeros(10, 10)
    mask.view(-1)[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:p]] = 1
    inter = p * p / n
    assert float(iou(torch.ones(10, 10), mask)[0]) == pytest.approx(inter / (2 * p - inter), rel=1e-12)


def test_binary_map_is_taken_as_is():
    mask = torch.zeros(8, 8)
    mask[2:6, 2:6] = 1  # 16 pixels
    region = torch.zeros(8, 8)
    region[2:4, 2:8] = 1  # 12 pixels, 8 of them in the mask
    assert float(iou(region, mask)[0]) == pytest.approx(8 / 20)
    # the same region with values 0.2 / 0.7: the higher value is the region
    assert float(iou(0.2 + 0.5 * region, mask)[0]) == pytest.approx(8 / 20)
    # binarised to p = 16 pixels instead: the 12 region pixels and 4 of the 52 background pixels,
    # 8 of which lie in the mask: I = 8 + 8 * 4 / 52
    inter = 8 + 8 * 4 / 52
    assert float(iou(region, mask, binary_as_is=False)[0]) == pytest.approx(inter / (32 - inter), rel=1e-12)


def test_top_k_mask_breaks_ties_at_random_with_a_seed():
    maps = torch.ones(4000, 4, 4)
    maps[:, 3, 3] = 2.0  # always kept
    kept = top_k_mask(maps, 4)
    assert bool((kept.sum((1, 2)) == 4).all()) and bool(kept[:, 3, 3].all())
    # the 15 tied pixels share 3 slots: each is kept in about 1 / 5 of the maps, wherever it is
    share = kept.double().mean(0).flatten()[:15]
    assert float((share - 0.2).abs().max()) < 0.03, share
    # reproducible by default, another generator gives another draw
    assert torch.equal(top_k_mask(maps[:50], 4), kept[:50])
    other = top_k_mask(maps[:50], 4, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(other, kept[:50])


def test_pointing_game():
    maps = torch.zeros(2, 1, 8, 8)
    maps[0, 0, 2, 2] = 1
    maps[1, 0, 7, 7] = 1
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 1:4, 1:4] = 1
    assert pointing_game(maps, masks).tolist() == [1.0, 0.0]
    masks2 = torch.zeros(2, 1, 8, 8)
    masks2[:, :, 5, 5] = 1
    assert pointing_game(maps, masks2, tolerance=2).tolist() == [0.0, 1.0]


def test_pointing_game_scores_a_tied_maximum_by_the_share_inside_the_mask_wherever_it_lies():
    # a constant map: every pixel is "the" maximum; the row-major first pixel (0, 0) would say
    # miss for a mask at the bottom and hit for the same mask at the top
    maps = torch.ones(2, 1, 8, 8)
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, 0, :2] = 1  # top two rows
    masks[1, 0, -2:] = 1  # bottom two rows
    assert pointing_game(maps, masks).tolist() == [0.25, 0.25]
    plateau = torch.zeros(1, 1, 8, 8)
    plateau[0, 0, 3:5, 3:7] = 1  # 8 tied maxima, 2 of them in the mask
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 4, 5:] = 1
    assert pointing_game(plateau, mask).tolist() == [0.25]


def test_in_mask_fraction_analytic():
    """|map| is 2 on the mask's 3 pixels and 1 on the other 13 of a 4 x 4 map: 6 / 19 inside, at any
    scale; the positive part lies inside only; a map spread evenly gets the mask's share, 3 / 16."""
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 0, :3] = True
    maps = torch.where(mask, 2.0, -1.0)[:, None] * torch.tensor([1.0, 0.5])[:, None, None, None]
    frac = in_mask_fraction(maps, mask)
    assert frac.dtype == np.float64 and frac.shape == (2,)
    np.testing.assert_array_equal(frac, [6 / 19, 6 / 19])
    np.testing.assert_array_equal(in_mask_fraction(maps.numpy(), mask.numpy().astype(float)), [6 / 19, 6 / 19])
    np.testing.assert_array_equal(in_mask_fraction(maps, mask, "positive"), [1.0, 1.0])
    np.testing.assert_array_equal(in_mask_fraction(-maps, mask, "positive"), [0.0, 0.0])
    np.testing.assert_array_equal(in_mask_fraction(torch.ones(4, 4), mask[0]), [3 / 16])
    assert np.isnan(in_mask_fraction(torch.zeros(4, 4), mask[0])).all()  # no mass
    assert np.isnan(in_mask_fraction(-torch.ones(4, 4), mask[0], "positive")).all()
    with pytest.raises(UnknownNameError):
        in_mask_fraction(maps, mask, "squared")
    with pytest.raises(InputShapeError):
        in_mask_fraction(maps, mask[:, :3])


def test_in_mask_fraction_of_a_partition_adds_up_and_matches_the_formula():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 1, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 3, size=(5, 16, 16))
    parts = [labels == k for k in range(3)]
    signed = maps[:, 0].astype(np.float64)
    for mode, mass in (("absolute", np.abs(signed)), ("positive", np.clip(signed, 0, None))):
        shares = [in_mask_fraction(maps, part, mode) for part in parts]
        np.testing.assert_allclose(sum(shares), 1.0, rtol=1e-12)
        for part, share in zip(parts, shares, strict=True):
            np.testing.assert_allclose(share, (mass * part).sum((1, 2)) / mass.sum((1, 2)), rtol=1e-12)


def test_experiments_measure_mass_with_the_one_primitive():
    from chexp.experiments import change_in_mask, shortcut

    assert change_in_mask.in_mask_fraction is in_mask_fraction
    assert shortcut.MASS_MODES is MASS_MODES
    parts = {"in": np.eye(4, dtype=bool)[None], "out": ~np.eye(4, dtype=bool)[None]}
    shares = shortcut.mass_fractions(np.arange(16.0).reshape(1, 4, 4), parts)
    np.testing.assert_array_equal(shares["in"], [(0 + 5 + 10 + 15) / 120])


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
