"""Exceptions raised by chexp.

Every error a user can trigger with bad input derives from :class:`ChexpError`, so a
caller can catch them all at once. Each also derives from the built-in exception a
Python programmer would expect (``ValueError``, ``KeyError``, ``FileNotFoundError``),
so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from collections.abc import Iterable


class ChexpError(Exception):
    """Base class of every chexp error."""


class InputRangeError(ChexpError, ValueError):
    """An image tensor is outside the torchxrayvision range [-1024, 1024] or not finite."""


class InputShapeError(ChexpError, ValueError):
    """An image tensor has the wrong number of dimensions, channels or spatial size."""


class UnknownTargetError(ChexpError, KeyError):
    """A target (pathology, output) name that the model does not predict."""

    def __init__(self, name: object, valid: Iterable[str], what: str = "target") -> None:
        self.name = name
        self.valid = [v for v in valid if v]
        super().__init__(
            f"Unknown {what} {name!r}. Valid {what}s: {', '.join(self.valid)}"
        )

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0])


class TargetRequiredError(UnknownTargetError):
    """``target=None`` for a model with several outputs: which one to explain is ambiguous."""

    def __init__(self, valid: Iterable[str]) -> None:
        super().__init__(None, valid)
        self.args = (
            f"target=None explains a model's only output, but this model has {len(self.valid)} "
            f"outputs; name the one to explain. Valid targets: {', '.join(self.valid)}",
        )


class UnknownLayerError(ChexpError, KeyError):
    """A layer name that does not exist in the model."""

    def __init__(self, name: str, valid: Iterable[str]) -> None:
        valid = list(valid)
        shown = ", ".join(valid[:60]) + (" ..." if len(valid) > 60 else "")
        super().__init__(f"Unknown layer {name!r}. Available layers: {shown}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownNameError(ChexpError, KeyError):
    """A name (model, dataset, method, option) that is not in a registry."""

    def __init__(self, name: object, valid: Iterable[str], what: str) -> None:
        super().__init__(f"Unknown {what} {name!r}. Valid: {', '.join(sorted(valid))}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownMethodError(UnknownNameError):
    """An attribution method name (slug or display name) that is not in :mod:`chexp.methods`."""

    def __init__(self, name: object, valid: Iterable[str]) -> None:
        super().__init__(name, valid, "attribution method")


class ChecksumError(ChexpError, ValueError):
    """A file's sha256 differs from the registry: the file is not used."""


class CorruptFileError(ChexpError, ValueError):
    """A file exists but cannot be decoded as what it claims to be."""


class WeightsUnavailableError(ChexpError, FileNotFoundError):
    """Pretrained weights are neither cached nor downloadable (for example offline)."""


class DataUnavailableError(ChexpError, FileNotFoundError):
    """A data file is neither cached nor downloadable, or a user-given folder lacks it."""


class InvalidMaskError(ChexpError, ValueError):
    """A lung mask that cannot be split into two lungs (empty, or one lung missing)."""


class NotFittedError(ChexpError, RuntimeError):
    """An estimator (for example IBA's per-unit statistics) is used before being fitted."""


class UnsupportedProfileError(ChexpError, ValueError):
    """An experiment that has no data or models for the profile (the message says what is missing)."""


class InvalidParameterError(ChexpError, ValueError):
    """A parameter value outside what the function accepts (the message names the parameter,
    the value and what is allowed): a negative count, an empty list, an unknown option value."""


class InvalidTypeError(ChexpError, TypeError):
    """An argument of the wrong kind (for example a model without the interface a method needs)."""


class MissingDependencyError(ChexpError, ModuleNotFoundError):
    """An optional package that a feature needs is not installed (the message names it and how to
    install it)."""


class TaskFailedError(ChexpError, RuntimeError):
    """A task of a Dask cluster failed or lost its worker; the message names its images and the
    original error is chained (``__cause__``)."""


class IndexOutOfRangeError(ChexpError, IndexError):
    """An item index past the end of a dataset or batch (an ``IndexError``, so iteration by
    ``__getitem__`` stops there)."""


class PhantomConfigError(ChexpError, ValueError):
    """A :class:`~chexp.phantoms.PhantomConfig` value is out of range (prevalence, probability
    or size), or an argument of :func:`~chexp.phantoms.generate` is."""


class StatisticsMismatchError(ChexpError, ValueError):
    """IBA statistics fitted for another model, another layer, or a feature map of another shape."""


class BottleneckLayerError(ChexpError, ValueError):
    """A layer that cannot carry an IBA bottleneck (not run, run twice, or not a 4-D feature map)."""


class AttributionError(ChexpError, ValueError):
    """An IBA optimisation produced non-finite values (NaN in the model output or statistics)."""


class LossMismatchError(ChexpError, ValueError):
    """An IBA loss that does not fit the model's output (classification loss on a regression
    head...)."""


__all__ = [
    "ChexpError",
    "InputRangeError",
    "InputShapeError",
    "UnknownTargetError",
    "TargetRequiredError",
    "UnknownLayerError",
    "UnknownNameError",
    "UnknownMethodError",
    "ChecksumError",
    "CorruptFileError",
    "WeightsUnavailableError",
    "DataUnavailableError",
    "NotFittedError",
    "InvalidMaskError",
    "UnsupportedProfileError",
    "InvalidParameterError",
    "InvalidTypeError",
    "TaskFailedError",
    "IndexOutOfRangeError",
    "MissingDependencyError",
    "PhantomConfigError",
    "StatisticsMismatchError",
    "BottleneckLayerError",
    "AttributionError",
    "LossMismatchError",
    "ChexpWarning",
    "ImageQualityWarning",
]


class ChexpWarning(UserWarning):
    """Base of chexp's warnings: the input was used, but perhaps not as its author meant."""


class ImageQualityWarning(ChexpWarning):
    """An image that is read, but probably not as its author meant: an assumed bit depth, an image
    smaller than the model's input (upsampled), a constant image."""
