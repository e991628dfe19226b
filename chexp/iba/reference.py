"""A straightforward implementation of the reference IBA algorithm, for checks and benchmarks.

As in the reference code (BioroboticsLab/IBA, CheXplain-IBA): one image at a time, the image
repeated ``samples`` times, and at every step a full forward and backward pass through the whole
network with the gradients of the model's parameters computed too (the reference's models have
``requires_grad`` on; chexp's loaded models have it off, so it is switched on here for the run
and the flags and ``.grad`` attributes are put back afterwards). The map is the information of
the last forward pass (or of the final mask with ``config.final_mask``), as in the engine.

It shares the bottleneck arithmetic and noise generators with the lean engine, so that for the
same seed both must give the same maps; an oracle written independently of both from the
published algorithm lives in the tests (``tests/test_iba_oracle.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
from torch import nn

from ..models.base import Classifier
from ..models.modules import eval_mode, resolve_layer
from .bottleneck import KEEP, BottleneckConfig, Flow, PerSampleBottleneck, saliency
from .estimator import UnitStatistics
from .hooks import replace_output
from .losses import ModelLoss


@contextmanager
def parameter_gradients(model: nn.Module) -> Iterator[None]:
    """Within the block every parameter of ``model`` has ``requires_grad`` on; on exit each
    parameter's flag and ``.grad`` are put back as they were."""
    saved = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        for p, _, _ in saved:
            p.requires_grad_(True)
        yield
    finally:
        for p, flag, grad in saved:
            p.requires_grad_(flag)
            p.grad = grad


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
    with eval_mode(model), parameter_gradients(model):
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
                _, capacity = bottleneck.reported(seen[0], config.final_mask)
                maps.append(saliency(capacity, x.shape[-2:]))
    return torch.cat(maps)


def _apply_and_keep_first(bottleneck: PerSampleBottleneck, seen: list[torch.Tensor], r: torch.Tensor) -> torch.Tensor:
    """``bottleneck(r)``; the first sample of the layer output ``r`` is kept in ``seen`` (replaced
    at every forward pass)."""
    seen[:] = [r[:1].detach()]
    return bottleneck(r)
