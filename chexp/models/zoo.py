"""Every model chexp can load, by name: the papers' pretrained models and the project's own.

>>> from chexp.models.zoo import load_classifier, load_autoencoder
>>> clf = load_classifier("phantom")                     # trains once, then cached
>>> xrv_all = load_classifier("densenet121-res224-all")  # downloads the weights (internet)

Other modules add their models with :func:`register_classifier` / :func:`register_autoencoder`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UnknownNameError
from .base import Autoencoder, Classifier, OutputKind

ClassifierFactory = Callable[[OutputKind], Classifier]
AutoencoderFactory = Callable[[], Autoencoder]

CLASSIFIERS: dict[str, ClassifierFactory] = {}
AUTOENCODERS: dict[str, AutoencoderFactory] = {}


def register_classifier(name: str, factory: ClassifierFactory) -> None:
    """Make ``load_classifier(name, output)`` call ``factory(output)``."""
    CLASSIFIERS[name] = factory


def register_autoencoder(name: str, factory: AutoencoderFactory) -> None:
    """Make ``load_autoencoder(name)`` call ``factory()``."""
    AUTOENCODERS[name] = factory


def load_classifier(name: str, output: OutputKind = "probability") -> Classifier:
    """A classifier by name, in eval mode, returning scores of kind ``output``."""
    try:
        factory = CLASSIFIERS[name]
    except KeyError:
        raise UnknownNameError(name, CLASSIFIERS, "classifier") from None
    return factory(output)


def load_autoencoder(name: str) -> Autoencoder:
    """An autoencoder by name, in eval mode."""
    try:
        factory = AUTOENCODERS[name]
    except KeyError:
        raise UnknownNameError(name, AUTOENCODERS, "autoencoder") from None
    return factory()


def _xrv_densenet(name: str) -> ClassifierFactory:
    def factory(output: OutputKind) -> Classifier:
        from .xrv import load_xrv_densenet

        return load_xrv_densenet(name, output=output)

    return factory


def _jfhealthcare(output: OutputKind) -> Classifier:
    from .xrv import load_jfhealthcare

    return load_jfhealthcare(output=output)


def _resnet_ae101() -> Autoencoder:
    from .xrv import load_resnet_ae101

    return load_resnet_ae101()


def _phantom_classifier(output: OutputKind) -> Classifier:
    from ..training import phantom_classifier

    return phantom_classifier().with_output(output)


def _phantom_autoencoder() -> Autoencoder:
    from ..training import phantom_autoencoder

    return phantom_autoencoder()


register_classifier("densenet121-res224-all", _xrv_densenet("densenet121-res224-all"))
register_classifier("densenet121-res224-mimic_ch", _xrv_densenet("densenet121-res224-mimic_ch"))
register_classifier("jfhealthcare", _jfhealthcare)
register_classifier("phantom", _phantom_classifier)
register_autoencoder("101-elastic", _resnet_ae101)
register_autoencoder("phantom", _phantom_autoencoder)
