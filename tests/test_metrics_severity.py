"""BrixIA zones and severity-map correlation on hand-made lungs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chexp.errors import InputShapeError, InvalidMaskError
from chexp.metrics.severity import brixia_zones, severity_correlation, severity_map, split_lungs


def _lungs() -> torch.Tensor:
    m = torch.zeros(30, 20, dtype=torch.bool)
    m[3:27, 2:8] = True  # image-left lung (patient right): zones A, B, C, 8 rows each
    m[6:18, 12:18] = True  # image-right lung: D, E, F, 4 rows each
    return m


def test_zones_split_each_lung_in_thirds():
    z = brixia_zones(_lungs())
    assert z.shape == (6, 30, 20)
    assert [int(z[i].sum()) for i in range(6)] == [48, 48, 48, 24, 24, 24]
    assert z[0, 3:11, 2:8].all() and z[2, 19:27, 2:8].all() and z[3, 6:10, 12:18].all()
    assert not (z.sum(0) > 1).any() and torch.equal(z.any(0), _lungs())


def _shifted_rotated_lungs() -> tuple[np.ndarray, np.ndarray]:
    """Two lungs of a patient shifted right and rotated by 20 degrees: the image-left lung crosses
    the image's vertical midline (column 32 of 64)."""
    rows, cols = np.mgrid[0:64, 0:64]
    angle = np.deg2rad(20)

    def ellipse(r0: float, c0: float) -> np.ndarray:
        dr, dc = rows - r0, cols - c0
        u, v = dr * np.cos(angle) - dc * np.sin(angle), dr * np.sin(angle) + dc * np.cos(angle)
        return (u / 18) ** 2 + (v / 7) ** 2 <= 1

    return ellipse(30, 28), ellipse(36, 48)


def test_zones_follow_the_two_lungs_not_the_midline():
    right, left = _shifted_rotated_lungs()
    assert right[:, 32:].any()  # the midline would give part of the right lung to zones D-F
    z = brixia_zones(right | left).numpy()
    np.testing.assert_array_equal(z[:3].any(0), right)  # A-C: exactly the image-left lung
    np.testing.assert_array_equal(z[3:].any(0), left)
    for lung, thirds in ((right, z[:3]), (left, z[3:])):  # thirds of each lung's own rows
        lung_rows = np.flatnonzero(lung.any(1))
        tops = [np.flatnonzero(t.any(1)).min() for t in thirds]
        height = lung_rows[-1] - lung_rows[0] + 1
        assert tops == [lung_rows[0] + -(-k * height // 3) for k in range(3)]
    split = split_lungs(torch.from_numpy(right | left))
    np.testing.assert_array_equal(split[0], right)


def test_zones_reject_an_empty_mask_and_batches():
    right, _ = _shifted_rotated_lungs()
    with pytest.raises(InvalidMaskError):
        brixia_zones(np.zeros((8, 8), bool))
    with pytest.raises(InputShapeError):
        brixia_zones(np.stack([right, right]))


def test_severity_correlation():
    zones = brixia_zones(_lungs())
    scores = torch.tensor([3.0, 0, 1, 2, 0, 1])
    painted = severity_map(zones, scores)
    assert painted[5, 4] == 3 and painted[20, 4] == 1 and painted[0, 0] == 0
    maps = torch.stack([painted, -painted, torch.rand(30, 20)])[:, None]
    corr = severity_correlation(maps, zones, scores)
    assert corr[0] == pytest.approx(1.0) and corr[1] == pytest.approx(-1.0) and abs(float(corr[2])) < 0.3
    inside = severity_correlation(maps[:1] + 5 * (~_lungs()), zones, scores, within_lungs=True)
    assert inside[0] == pytest.approx(1.0)  # pixels outside the lungs ignored
    np.testing.assert_allclose(
        float(severity_correlation(maps[2:], zones, scores)[0]),
        np.corrcoef(maps[2, 0].flatten().numpy(), painted.flatten().numpy())[0, 1],
    )
    with pytest.raises(InputShapeError):
        severity_map(zones, scores[:5])
