"""A straightforward implementation of the reference IBA algorithm, for checks and benchmarks.

As in the reference code (BioroboticsLab/IBA, CheXplain-IBA): one image at a time, the image
repeated ``samples`` times, and at every step a full forward and backward pass through the whole
network (parameters keep their ``requires_grad`` flags, so their gradients are computed too and
discarded afterwards). It shares the bottleneck arithmetic and noise generators with the lean
engine, so that for the same seed both must give the same maps.
"""

from __future__ import annotations

from functools import partial

import torch

from ..models.base import Classifier
from ..models.modules import eval_mode, resolve_layer
from .bottleneck import KEEP, BottleneckConfig, Flow, PerSampleBottleneck, saliency
from .estimator import UnitStatistics
from .hooks import replace_output
from .losses import ModelLoss


def reference_attribute(
    model: Classifier,
    layer: str,
    inputs: torch.Tensor,
    loss: ModelLoss,
    statistics: UnitStatistics,
    config: BottleneckConfig | None = None,
    flow: Flow = KEEP,
) -> torch.Tensor:
    """Maps ``(B, 1, H, W)`` (bits per pixel), computed one image at a time the reference way."""
    config = config or BottleneckConfig()
    model.check_input(inputs)
    _, module = resolve_layer(model, layer)
    maps = []
    grads = {p: p.grad for p in model.parameters()}
    try:
        with eval_mode(model):
            for i in range(inputs.shape[0]):
                x = inputs[i : i + 1]
                part = loss.select(slice(i, i + 1))
                part.check(model, 1)
                with torch.no_grad():
                    clean = part.scores(model, x)
                batch = x.expand(config.samples, -1, -1, -1)
                bottleneck = PerSampleBottleneck(1, statistics, config, flow, x.device)
                optimizer = torch.optim.Adam([bottleneck.alpha], lr=config.lr)
                seen: list[torch.Tensor] = []
                with replace_output(module, partial(_apply_and_keep_first, bottleneck, seen)):
                    for _ in range(config.steps):
                        optimizer.zero_grad()
                        scores = part.scores(model, batch)
                        model_loss = part(scores.reshape(1, config.samples, -1), clean)
                        loss_value = flow.model_loss_sign * model_loss + config.beta * bottleneck.information_loss()
                        loss_value.sum().backward()
                        optimizer.step()
                with torch.no_grad():
                    maps.append(saliency(bottleneck.capacity(seen[0]), x.shape[-2:]))
    finally:
        for p, g in grads.items():
            p.grad = g
    return torch.cat(maps)


def _apply_and_keep_first(bottleneck: PerSampleBottleneck, seen: list[torch.Tensor], r: torch.Tensor) -> torch.Tensor:
    """``bottleneck(r)``; the first sample of the layer output ``r`` is kept in ``seen`` (replaced
    at every forward pass)."""
    seen[:] = [r[:1].detach()]
    return bottleneck(r)
