"""The models ``chexp explain`` explains: chexp's own, torchxrayvision's, or the user's.

``model`` is one of

* a profile of chexp's model store, ``"phantom"`` or ``"cohen"`` (the Cohen/BrixIA detectors):
  offline once trained; its autoencoder and its training images (for the IBA statistics) come
  with it;
* a torchxrayvision model name of :data:`chexp.models.zoo.CLASSIFIERS` (``densenet121-res224-all``
  ...): pretrained weights downloaded by torchxrayvision (a clear error offline); autoencoder
  ``101-elastic``;
* the user's own model: a TorchScript file (``model.pt``) or an importable ``module:factory``
  whose call returns a :class:`torch.nn.Module` (or a ready :class:`~chexp.models.Classifier`,
  used as it is).

What the user's model must accept and return (:class:`UserClassifier`): images ``(B, 1, S, S)``,
float32, in torchxrayvision's range [-1024, 1024] (chexp reads every file into it: center crop
to a square, resize to ``S``), ``S`` = ``input_size`` (default 224, or the module's own
``input_size`` attribute); it returns ``(B, T)`` logits (pre-sigmoid; chexp applies the sigmoid)
or, with ``output="probability"``, probabilities. The target names are the module's ``targets``
(or ``pathologies``) attribute, or ``targets=`` given with the model. A TorchScript model accepts
no forward hooks, so only the gradient methods (``grad``, ``gradxinput``, ``integrated``,
``iterativedelete``, Latent Shift) explain it; give a ``module:factory`` for Grad-CAM, IBA, LRP
and guided backprop.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..errors import InvalidParameterError, InvalidTypeError, UnknownNameError
from ..models.base import Autoencoder, Classifier

__all__ = ["ExplainModels", "UserClassifier", "load_models", "load_user_model", "PROFILE_MODELS"]

#: model names that are profiles of chexp's model store (offline, with training images)
PROFILE_MODELS: tuple[str, ...] = ("phantom", "cohen")
#: the autoencoder used with a torchxrayvision classifier when none is given
XRV_AUTOENCODER = "101-elastic"
UserOutput = Literal["logit", "probability"]


class UserClassifier(Classifier):
    """A user's :class:`torch.nn.Module` as a chexp :class:`Classifier`.

    Args:
        module: images ``(B, 1, S, S)`` in [-1024, 1024] -> ``(B, T)`` logits (or probabilities).
        targets: the T output names.
        input_size: S (``None``: any size).
        returns: what ``module`` returns, ``"logit"`` (chexp applies the sigmoid) or
            ``"probability"`` (used as is; its logits are ``logit(p)``).
    """

    def __init__(self, module: nn.Module, targets: Sequence[str], input_size: int | None = 224,
                 returns: UserOutput = "logit") -> None:
        super().__init__(list(targets), output="probability", input_size=input_size)
        if returns not in ("logit", "probability"):
            raise InvalidParameterError(f"returns must be 'logit' or 'probability', got {returns!r}")
        self.module = module
        self.returns = returns

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != len(self.targets):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InvalidTypeError(
                f"the model must return a (B, {len(self.targets)}) tensor (one column per target), got {shape}"
            )
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self._raw(x)
        return torch.logit(out.clamp(1e-6, 1 - 1e-6)) if self.returns == "probability" else out

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        out = self._raw(x)
        return out if self.returns == "probability" else torch.sigmoid(out)


def _module_from_spec(spec: str) -> nn.Module | Classifier:
    path = Path(spec)
    if path.is_file():
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError) as err:
            raise InvalidTypeError(f"{path}: not a TorchScript file ({str(err).splitlines()[0]})") from None
    module_name, _, factory_name = spec.partition(":")
    try:
        factory: Callable[[], object] = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as err:
        raise UnknownNameError(spec, ["phantom", "cohen", "<torchxrayvision name>", "<file.pt>", "<module:factory>"],
                               f"model ({err})") from None
    model = factory()
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"{spec}() returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


def load_user_model(spec: str, targets: Sequence[str] | None = None, input_size: int | None = None,
                    returns: UserOutput = "logit") -> Classifier:
    """The user's model ``spec`` (a TorchScript file or ``module:factory``) as a Classifier.

    Raises:
        UnknownNameError: ``spec`` is neither a file nor an importable ``module:factory``.
        InvalidTypeError: not TorchScript, or the factory returns no module.
        InvalidParameterError: no target names (no ``targets`` attribute and none given).
    """
    module = _module_from_spec(spec)
    if isinstance(module, Classifier):
        return module.with_output("probability").eval()
    names = list(targets or getattr(module, "targets", None) or getattr(module, "pathologies", None) or [])
    if not names:
        raise InvalidParameterError(
            f"model {spec}: its target names are unknown; give them (--model-targets A,B,C) or set a "
            "`targets` list attribute on the module"
        )
    size = input_size if input_size is not None else int(getattr(module, "input_size", 224))
    return UserClassifier(module, names, size, returns).eval().requires_grad_(False)


@dataclass
class ExplainModels:
    """A classifier to explain with what its methods need.

    Attributes:
        name: the model as given (for reports).
        classifier: output ``"probability"``.
        autoencoder: for Latent Shift, or ``None``.
        size: the image side every input is read at.
        training_images: ``n -> (n, 1, S, S)`` training images for the IBA statistics, or ``None``
            (the user's model: a folder is given, or the explained images are used).
        cacheable: IBA statistics of this model may be cached beside it (chexp's store only).
    """

    name: str
    classifier: Classifier
    autoencoder: Autoencoder | None
    size: int
    training_images: Callable[[int], torch.Tensor] | None = None
    cacheable: bool = False


def _autoencoder(spec: str | Autoencoder | None, device: str) -> Autoencoder | None:
    if spec is None or isinstance(spec, nn.Module):
        return spec
    if spec in PROFILE_MODELS:
        from ..profiles import get_profile

        return get_profile(spec, train_device=device).autoencoder()
    from ..models.zoo import load_autoencoder

    return load_autoencoder(spec)


def load_models(
    model: str | Classifier,
    autoencoder: str | Autoencoder | None = None,
    device: str = "cpu",
    targets: Sequence[str] | None = None,
    input_size: int | None = None,
    returns: UserOutput = "logit",
) -> ExplainModels:
    """Resolve ``model`` (see the module docstring) and its autoencoder, on ``device``.

    ``autoencoder`` defaults to the profile's (``phantom``, ``cohen``) or ``101-elastic`` for a
    torchxrayvision model; a user's model has none unless given (only Latent Shift needs one).
    """
    from ..models.zoo import CLASSIFIERS

    name = model if isinstance(model, str) else type(model).__name__
    training: Callable[[int], torch.Tensor] | None = None
    default_ae: str | None = None
    if isinstance(model, Classifier):
        clf = model.with_output("probability")
    elif model in PROFILE_MODELS:
        from ..profiles import get_profile

        profile = get_profile(model, train_device=device)
        clf, training, default_ae = profile.classifier("probability"), profile.training_images, model
    elif model in CLASSIFIERS:
        from ..models.zoo import load_classifier

        clf, default_ae = load_classifier(model, "probability"), XRV_AUTOENCODER
    else:
        clf = load_user_model(model, targets, input_size, returns)
    ae = _autoencoder(autoencoder if autoencoder is not None else default_ae, device)
    size = clf.input_size or (ae.input_size if ae is not None and ae.input_size else None) or input_size or 224
    clf = clf.to(device).eval()
    ae = ae.to(device).eval() if ae is not None else None
    return ExplainModels(name, clf, ae, int(size), training, cacheable=training is not None)
