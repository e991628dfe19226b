"""Finding a sub-module by name, and putting models in eval mode for the length of a block.

Every attribution method of chexp finds its layers with :func:`resolve_layer` and runs its
models inside :func:`eval_mode`, which restores what it changed on exit, also when an
exception is raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from ..errors import UnknownLayerError

__all__ = ["eval_mode", "layer_names", "resolve_layer"]


def layer_names(model: nn.Module) -> list[str]:
    """Names of all sub-modules, shallowest first (so that error messages show the big blocks)."""
    names = [name for name, _ in model.named_modules() if name]
    return sorted(names, key=lambda n: n.count("."))


def resolve_layer(model: nn.Module, name: str) -> tuple[str, nn.Module]:
    """Find a sub-module by its full dotted name or by a unique dotted suffix.

    ``"features.denseblock3"`` finds ``model.features.denseblock3`` inside a wrapper that holds
    the torchxrayvision model as ``.model``; ``"denseblock3"`` works as well.

    Returns:
        ``(full_name, module)``.

    Raises:
        UnknownLayerError: no such layer (the message lists the available ones), or the suffix
            matches several layers (the message lists those).
    """
    modules = dict(model.named_modules())
    if name and name in modules:
        return name, modules[name]
    matches = [n for n in modules if n and n.endswith("." + name)] if name else []
    if len(matches) == 1:
        return matches[0], modules[matches[0]]
    if len(matches) > 1:
        raise UnknownLayerError(f"{name} (ambiguous: it matches several layers)", matches)
    raise UnknownLayerError(name, layer_names(model))


@contextmanager
def eval_mode(*modules: nn.Module, freeze: bool = False) -> Iterator[None]:
    """Within the block, ``modules`` are in eval mode (batch-independent BatchNorm and Dropout).

    Args:
        *modules: the models (their sub-modules included).
        freeze: also switch off the gradients of their parameters, so that autograd builds no
            graph for them (IBA optimises only its own ``alpha``).

    On exit every sub-module's train/eval mode and every parameter's ``requires_grad`` flag are
    put back as they were.
    """
    training = [(m, m.training) for module in modules for m in module.modules()]
    flags = [(p, p.requires_grad) for module in modules for p in module.parameters()] if freeze else []
    try:
        for module in modules:
            module.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in training:
            m.training = mode
