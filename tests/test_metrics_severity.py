"""BrixIA zones and severity-map correlation on hand-made lungs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chexp.errors import InputShapeError
from chexp.metrics.severity import brixia_zones, severity_correlation, severity_map


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
