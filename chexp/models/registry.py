"""Architectures that :mod:`chexp.models.store` can rebuild from a model card, by class name."""

from __future__ import annotations

from typing import TypeVar

from torch import nn

from ..errors import UnknownNameError

ARCHITECTURES: dict[str, type[nn.Module]] = {}

M = TypeVar("M", bound=type[nn.Module])


def register_architecture(cls: M) -> M:
    """Class decorator: make ``cls`` rebuildable from a saved card by its name."""
    ARCHITECTURES[cls.__name__] = cls
    return cls


def build_architecture(name: str, kwargs: dict) -> nn.Module:
    try:
        cls = ARCHITECTURES[name]
    except KeyError:
        raise UnknownNameError(name, ARCHITECTURES, "architecture") from None
    return cls(**kwargs)
