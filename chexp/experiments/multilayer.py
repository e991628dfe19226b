"""IBA at each layer and their Multi-layer combination: CheXplain-IBA Fig. 4.

Fig. 4's IoU table is :func:`chexp.experiments.iou.map_iou_table` of these maps.
"""

from __future__ import annotations

from typing import Any

import torch

from ..iba import MultiLayerIBA, intersection
from .iba_setup import Setup

__all__ = ["multilayer_maps"]


def multilayer_maps(setup: Setup, images: torch.Tensor, target: Any) -> dict[str, torch.Tensor]:
    """IBA at ``setup.layer``, IBA at each Multi-layer layer, and the combined Multi-layer IBA map
    (``combine`` from ``setup.options``, default ``"masked"``) and the paper's Eq. 7
    intersection. Keys: ``"IBA"``, ``"IBA @ <layer>"`` ..., ``"Multi-layer IBA"``,
    ``"Multi-layer IBA (Eq. 7)"``; maps ``(B, 1, H, W)`` on CPU."""
    x = images.to(setup.device)
    ml = setup.method("Multi-layer IBA")
    assert isinstance(ml, MultiLayerIBA)
    per_layer = ml.attribute_layers(x, target)
    out = {"IBA": setup.method("IBA").attribute(x, target).cpu()}
    out.update({f"IBA @ {layer}": m.cpu() for layer, m in per_layer.items()})
    ordered = [per_layer[n] for n in ml.layer_names]
    out["Multi-layer IBA"] = ml.combine_maps(ordered).cpu()
    normalized = [ml.normalize(m) for m in ordered]
    binary = [n > t for n, t in zip(normalized, ml.thresholds, strict=True)]
    out["Multi-layer IBA (Eq. 7)"] = intersection(normalized, binary).cpu()
    return out
