"""Guided backpropagation (Springenberg et al. 2015) via Captum, with functional ReLUs handled.

Captum's ``GuidedBackprop`` changes the backward pass of every ``nn.ReLU`` *module* with a hook.
A ReLU applied as a function (``F.relu``) has no module and is missed: torchxrayvision's
DenseNet applies ``F.relu(features, inplace=True)`` after its last norm layer (in
``features2``), so on that model Captum alone lets negative gradients flow through the last and
most influential ReLU.

:func:`module_relus` fixes this for the duration of a ``with`` block: for each submodule whose
type is in :data:`FUNCTIONAL_RELU_FIXES`, it installs a module ``nn.ReLU`` that the model then
runs its features through, and restores the model on exit. :func:`count_functional_relus`
counts the ReLUs a forward pass applies outside any ``nn.ReLU`` module, so a model with
functional ReLUs that no fix covers is reported (a ``UserWarning`` from :class:`GuidedBackprop`).
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop as _CaptumGuidedBackprop
from torch import nn

from ..attribution import Attribution
from ..models.base import Classifier
from ..targets import Target
from .base import TargetScore

_FIX_RELU = "chexp_final_relu"
_FIX_POOL = "chexp_final_pool"


@contextmanager
def _xrv_densenet_module_relu(net: nn.Module) -> Iterator[None]:
    """Route torchxrayvision DenseNet's ``features2`` through a module ReLU and a module global
    average pool (restored on exit), so that module hooks (guided backprop, LRP rules) see both."""

    def features2(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # same computation as torchxrayvision's DenseNet.features2, with the ReLU as a module
        if hasattr(self, "input_resolution"):
            from ..models._xrv_import import xrv

            x = xrv.utils.fix_resolution(x, self.input_resolution, self)
        features = self.features(x)
        out = getattr(self, _FIX_RELU)(features)
        return getattr(self, _FIX_POOL)(out).view(features.size(0), -1)

    had_instance_attr = "features2" in net.__dict__
    previous = net.__dict__.get("features2")
    net.add_module(_FIX_RELU, nn.ReLU(inplace=False))
    net.add_module(_FIX_POOL, nn.AdaptiveAvgPool2d((1, 1)))
    net.features2 = types.MethodType(features2, net)
    try:
        yield
    finally:
        del net._modules[_FIX_RELU]
        del net._modules[_FIX_POOL]
        if had_instance_attr:
            net.features2 = previous
        else:
            del net.__dict__["features2"]


#: Module type -> context manager that makes that module's functional ReLUs module ReLUs.
#: torchxrayvision's DenseNet is added on first use once torchxrayvision is imported (a model
#: can only be one of its DenseNets then), so importing this module does not import
#: torchxrayvision and torchvision (seconds).
FUNCTIONAL_RELU_FIXES: dict[type, Callable[[nn.Module], AbstractContextManager[None]]] = {}


def _functional_relu_fixes() -> dict[type, Callable[[nn.Module], AbstractContextManager[None]]]:
    """:data:`FUNCTIONAL_RELU_FIXES`, with torchxrayvision's DenseNet fix added when it is loaded."""
    if "torchxrayvision" in sys.modules:
        from ..models._xrv_import import xrv

        FUNCTIONAL_RELU_FIXES.setdefault(xrv.models.DenseNet, _xrv_densenet_module_relu)
    return FUNCTIONAL_RELU_FIXES


@contextmanager
def module_relus(model: nn.Module) -> Iterator[int]:
    """Within the block, known functional ReLUs of ``model`` run as ``nn.ReLU`` modules.

    Yields the number of submodules that were patched; the model is restored on exit.
    """
    with ExitStack() as stack:
        patched = 0
        fixes = _functional_relu_fixes()
        for module in list(model.modules()):
            fix = fixes.get(type(module))
            if fix is not None:
                stack.enter_context(fix(module))
                patched += 1
        yield patched


def count_functional_relus(model: nn.Module, inputs: torch.Tensor) -> int:
    """How many ``F.relu`` calls one forward pass of ``model`` makes outside ``nn.ReLU`` modules.

    Runs one forward pass (no gradient) with ``torch.nn.functional.relu`` wrapped by a counter;
    calls made by ``nn.ReLU.forward`` are not counted. Calls to ``torch.relu``/``Tensor.relu``
    bypass ``F.relu`` and are not seen.
    """
    depth = 0
    count = 0
    original = F.relu

    def pre(_module: nn.Module, _args: object) -> None:
        nonlocal depth
        depth += 1

    def post(_module: nn.Module, _args: object, _out: object) -> None:
        nonlocal depth
        depth -= 1

    def counting_relu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        nonlocal count
        if depth == 0:
            count += 1
        return original(x, inplace=inplace)

    handles = []
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
    F.relu = counting_relu
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        F.relu = original
        for h in handles:
            h.remove()
    return count


class GuidedBackprop(Attribution):
    """Guided backprop maps via Captum, with known functional ReLUs made visible to its hooks.

    Args:
        model: classifier to explain.
        fix_functional_relu: apply :func:`module_relus` during attribution (default ``True``;
            ``False`` reproduces plain Captum on the model as is, as the reference code did: the
            paper's guided backprop maps, Table 1 and Fig. 4/5, were computed that way).
        check_functional_relu: run :func:`count_functional_relus` once per model and warn if
            ReLUs remain that no hook sees.

    Maps are signed ``(B, 1, H, W)`` (take ``abs`` for display, as the papers do).
    """

    def __init__(
        self,
        model: Classifier,
        fix_functional_relu: bool = True,
        check_functional_relu: bool = True,
    ) -> None:
        super().__init__(model)
        self.fix_functional_relu = fix_functional_relu
        self.check_functional_relu = check_functional_relu
        self._checked = False

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        wrapper = TargetScore(self.model, target)
        with ExitStack() as stack:
            if self.fix_functional_relu:
                stack.enter_context(module_relus(self.model))
            if self.check_functional_relu and not self._checked:
                self._checked = True
                left = count_functional_relus(self.model, inputs[:1])
                if left:
                    warnings.warn(
                        f"{type(self.model).__name__} applies {left} functional ReLU(s) that guided "
                        "backprop hooks do not see; register a fix in "
                        "chexp.baselines.guided.FUNCTIONAL_RELU_FIXES",
                        stacklevel=3,
                    )
            return _CaptumGuidedBackprop(wrapper).attribute(inputs)
