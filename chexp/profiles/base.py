"""What every profile provides (:class:`Profile`), the images it hands out (:class:`SampleSet`),
and the registry of profiles by name (:data:`PROFILES`, :func:`get_profile`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np
import torch

from ..errors import InvalidParameterError, UnknownNameError
from ..models.base import Autoencoder, Classifier, OutputKind
from ..progress import tqdm


@dataclass
class SampleSet:
    """Images with labels and (where known) ground-truth masks, ready for a model.

    Attributes:
        images: float32 tensor (N, 1, S, S) in [-1024, 1024].
        labels: float32 array (N, T), columns ``targets`` (NaN where unknown).
        targets: label names.
        masks: target name -> bool array (N, S, S) of where that finding is (empty if absent);
            only for targets with ground truth.
        ids: one identifier per image (for tables and provenance).
        source: a sentence naming the data, its version and its licence.
    """

    images: torch.Tensor
    labels: np.ndarray
    targets: tuple[str, ...]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def positives(self, target: str) -> np.ndarray:
        """Indices of the images labelled positive for ``target``."""
        k = self.targets.index(target)
        return np.flatnonzero(self.labels[:, k] == 1)


class LazyClassifiers(Mapping[str, Classifier]):
    """Classifiers by name, in a fixed order, each loaded on first access (then kept).

    Listing the names (``list(models)``, ``name in models``) loads nothing, so that
    :meth:`select` can pick some of them without loading (or downloading) the others.

    Args:
        loaders: name -> function returning that classifier, in the order to report them.
    """

    def __init__(self, loaders: Mapping[str, Callable[[], Classifier]]) -> None:
        self._loaders = dict(loaders)
        self._loaded: dict[str, Classifier] = {}

    def __getitem__(self, name: str) -> Classifier:
        if name not in self._loaded:
            self._loaded[name] = self._loaders[name]()
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def __contains__(self, name: object) -> bool:
        return name in self._loaders

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._loaders)})"

    def select(self, names: Sequence[str] | None = None) -> LazyClassifiers:
        """The classifiers ``names``, in that order (``None``: all of them).

        Raises:
            UnknownNameError: a name is not one of these classifiers (the message lists them).
            InvalidParameterError: ``names`` is a single string or empty.
        """
        if names is None:
            return self
        if isinstance(names, str) or not names:
            raise InvalidParameterError(f"names must be a non-empty list of classifier names, got {names!r}")
        for name in names:
            if name not in self._loaders:
                raise UnknownNameError(name, self._loaders, "classifier")
        return LazyClassifiers({name: partial(self.__getitem__, name) for name in names})


class Profile(ABC):
    """Where an experiment's data and models come from.

    A profile owns everything that differs between them: its classifier and autoencoders, the
    images those were trained on, its held-out samples and their targets. A capability a profile
    lacks raises :class:`~chexp.errors.UnsupportedProfileError` saying why; which notebooks run
    under a profile is declared by each notebook (metadata ``chexp.profiles``).
    """

    name: str
    #: targets that have ground-truth masks (localisation experiments iterate over these)
    tasks: tuple[str, ...] = ()
    #: the target a single-target page explains when its ``target`` parameter is ``None``
    example_target: str = ""
    #: where the models this profile trains on first use are trained (set by :func:`get_profile`;
    #: trained models are cached by configuration and returned on the CPU)
    train_device: str = "cpu"

    def check(self) -> None:
        """Raise a clear error now if data or weights this profile needs are missing."""
        self.classifier()

    @abstractmethod
    def classifier(self, output: OutputKind = "probability") -> Classifier: ...

    def classifiers(self, output: OutputKind = "probability") -> LazyClassifiers:
        """Every classifier the profile's experiments compare, by name (tables label their rows
        with it), each loaded when first used.

        By default the profile's one classifier, named after the profile; the ``paper`` profile
        returns the three models Gifsplanation compares.
        """
        return LazyClassifiers({self.name: partial(self.classifier, output)})

    @abstractmethod
    def autoencoder(self) -> Autoencoder: ...

    @abstractmethod
    def samples(self, n: int, seed: int = 0, task: str | None = None) -> SampleSet:
        """``n`` held-out images (positive for ``task`` if given), deterministic by ``seed``."""

    @abstractmethod
    def training_images(self, n: int) -> torch.Tensor:
        """The first ``n`` training images of the profile's classifier, ``(n, 1, S, S)`` in
        [-1024, 1024] (IBA fits its per-unit statistics on them)."""

    @abstractmethod
    def bottleneck_autoencoders(
        self, latent_channels: Sequence[int], epochs: int | None = None, n_train: int | None = None,
        progress: bool = True,
    ) -> dict[int, Autoencoder]:
        """Autoencoders that differ only in their bottleneck (Gifsplanation Fig. 2 / Appendix D),
        one per entry of ``latent_channels``, trained on this profile's training data and cached.

        ``epochs`` / ``n_train``: ``None`` keeps the profile's own schedule.
        """

    def describe(self, autoencoder: bool = True) -> str:
        """One paragraph for the page: profile, models and data that produced it.

        ``autoencoder=False`` leaves the autoencoder out (pages that do not use it; loading it
        could mean training it).
        """
        models = f"Classifier: {_model_name(self.classifier())}"
        if autoencoder:
            models += f"; autoencoder: {_model_name(self.autoencoder())}"
        return f"Profile **{self.name}**. {models}. Data: {self.data_description()}"

    def data_description(self) -> str:
        return ""


def _model_name(model: torch.nn.Module) -> str:
    card = getattr(model, "card", None)
    if card is not None:
        return f"{card.name} (config {card.config_hash}, trained by chexp)"
    inner = getattr(model, "model", model)
    return repr(inner) if len(repr(inner)) < 80 else type(inner).__name__


def bottleneck_sweep(
    latent_channels: Sequence[int], autoencoder: Callable[[int], Autoencoder], progress: bool = True
) -> dict[int, Autoencoder]:
    """``{c: autoencoder(c)}`` for each bottleneck ``c`` of ``latent_channels`` (in that order).

    Raises:
        InvalidParameterError: ``latent_channels`` is empty or holds a value below 1.
    """
    if not latent_channels or any(int(c) < 1 for c in latent_channels):
        raise InvalidParameterError(
            f"latent_channels must be a non-empty list of positive integers, got {list(latent_channels)}"
        )
    return {int(c): autoencoder(int(c))
            for c in tqdm(list(latent_channels), desc="bottleneck autoencoders", disable=not progress)}


#: profile name -> class; filled by :func:`register_profile` when ``chexp.profiles`` is imported.
PROFILES: dict[str, type[Profile]] = {}

P = TypeVar("P", bound=type[Profile])


def register_profile(cls: P) -> P:
    """Class decorator: make ``cls`` available as ``get_profile(cls.name)``."""
    PROFILES[cls.name] = cls
    return cls


def profile_class(name: str) -> type[Profile]:
    """The class of profile ``name``; :class:`~chexp.errors.UnknownNameError` lists the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownNameError(name, PROFILES, "profile") from None


def default_train_device() -> str:
    """``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def get_profile(name: str, train_device: str | None = None, **kwargs: Any) -> Profile:
    """The profile ``name`` (one of :data:`PROFILES`: ``phantom``, ``cohen``, ``paper``), built
    with ``kwargs`` (for example ``size=64``).

    ``train_device`` is where its models are trained the first time they are needed (default:
    :func:`default_train_device`, the GPU when there is one, as on Colab); a model trained on a
    GPU is cached like one trained on the CPU (same configuration, same cache entry).
    """
    profile = profile_class(name)(**kwargs)
    profile.train_device = train_device or default_train_device()
    return profile
