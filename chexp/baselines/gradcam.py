"""Grad-CAM (Selvaraju et al. 2017) via Captum's ``LayerGradCam``, upsampled to the input."""

from __future__ import annotations

import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from ..attribution import Attribution
from ..errors import UnknownLayerError
from ..models.base import Classifier
from ..models.modules import resolve_layer
from ..targets import Target
from .base import TargetScore


def last_spatial_layer(model: nn.Module, inputs: torch.Tensor) -> str:
    """Name of the last leaf module (in execution order) whose output is a 4-D ``(B, C, h, w)`` map
    with ``h * w > 1``: the usual Grad-CAM layer (``features.norm5`` in torchxrayvision's
    DenseNet). Runs one forward pass without gradients."""
    names = {m: n for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    last: list[str] = []

    def hook(module: nn.Module, _args: object, out: object) -> None:
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] * out.shape[-2] > 1:
            last.append(names[module])

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    if not last:
        raise UnknownLayerError("<auto>", names.values())
    return last[-1]


class GradCAM(Attribution):
    """Grad-CAM at one layer, bilinearly upsampled to the input size.

    Args:
        model: classifier to explain.
        layer: name of the layer (full dotted name as in ``model.named_modules()``, e.g.
            ``"net.features.norm5"``, or a unique suffix, see
            :func:`~chexp.models.modules.resolve_layer`); ``None`` picks the last layer with a
            spatial output (see :func:`last_spatial_layer`).
        relu: apply the ReLU of the original method (default ``True``).

    Maps are ``(B, 1, H, W)`` in score units (the layer's gradient-weighted activations,
    upsampled), >= 0 when ``relu``.
    """

    def __init__(self, model: Classifier, layer: str | None = None, relu: bool = True) -> None:
        super().__init__(model)
        self.layer = None if layer is None else resolve_layer(model, layer)[0]  # fails early on a bad name
        self.relu = relu

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        name = self.layer or last_spatial_layer(self.model, inputs[:1])
        cam = LayerGradCam(TargetScore(self.model, target), resolve_layer(self.model, name)[1])
        maps = cam.attribute(inputs, relu_attributions=self.relu)
        if maps.shape[1] != 1:
            maps = maps.sum(1, keepdim=True)
        return LayerAttribution.interpolate(maps, tuple(inputs.shape[-2:]), interpolate_mode="bilinear")
