"""The phantom severity score: BrixIA-like zone scores of a phantom, the target of
:func:`chexp.training.phantom_regressor` (CheXplain-IBA Fig. 3 on phantoms).

The lungs of a phantom are cut into the six BrixIA zones (:func:`chexp.metrics.severity.brixia_zones`);
each zone is scored 0-3 by the share of it covered by lung findings (:data:`SEVERITY_FINDINGS`):
below 2 % -> 0, below 15 % -> 1, below 40 % -> 2, else 3 (:data:`ZONE_THRESHOLDS`). The global
score is their sum (0-18).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputShapeError, InvalidParameterError
from ..metrics.severity import brixia_zones
from ..phantoms import FINDINGS

#: Phantom findings that count towards the severity score (lung opacities / air; not the heart
#: or devices).
SEVERITY_FINDINGS: tuple[str, ...] = ("Effusion", "Mass", "Pneumothorax")
#: Zone share thresholds between scores 0|1, 1|2 and 2|3.
ZONE_THRESHOLDS: tuple[float, float, float] = (0.02, 0.15, 0.40)
#: Target name of the phantom severity regressor.
SCORE_NAME = "Phantom severity score"


def zone_scores(
    lungs: np.ndarray, masks: np.ndarray, thresholds: Sequence[float] = ZONE_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """BrixIA-like zones and zone scores of phantoms.

    Args:
        lungs: bool ``(N, S, S)`` lung fields.
        masks: bool ``(N, 5, S, S)`` finding masks (columns :data:`chexp.phantoms.FINDINGS`).
        thresholds: zone-share cut points (three, increasing).

    Returns:
        ``zones`` bool ``(N, 6, S, S)`` (A-C image left, D-F image right, top to bottom) and
        ``scores`` float32 ``(N, 6)`` in {0, 1, 2, 3}.
    """
    lungs, masks = np.asarray(lungs, bool), np.asarray(masks, bool)
    if lungs.ndim != 3 or masks.ndim != 4 or masks.shape[0] != lungs.shape[0] or masks.shape[-2:] != lungs.shape[-2:]:
        raise InputShapeError(
            f"lungs must be (N, S, S) and masks (N, 5, S, S) with the same N and S, got {lungs.shape} "
            f"and {masks.shape}"
        )
    if len(thresholds) != 3 or list(thresholds) != sorted(thresholds):
        raise InvalidParameterError(f"thresholds must be three increasing shares, got {thresholds}")
    cols = [FINDINGS.index(f) for f in SEVERITY_FINDINGS]
    involved = masks[:, cols].any(axis=1)
    zones = np.stack([brixia_zones(lung).numpy() for lung in lungs])  # (N, 6, S, S)
    area = zones.sum(axis=(2, 3))
    share = (zones & involved[:, None]).sum(axis=(2, 3)) / np.maximum(area, 1)
    return zones, np.digitize(share, thresholds).astype(np.float32)
