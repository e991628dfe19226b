"""The papers' pretrained models, through torchxrayvision, wrapped in chexp's interfaces.

================================  ===========================================================
name                              model
================================  ===========================================================
``densenet121-res224-all``        XRV-all DenseNet121 (Gifsplanation's main classifier)
``densenet121-res224-mimic_ch``   DenseNet121 trained on MIMIC-CXR (CheXpert labels)
``jfhealthcare``                  JF Healthcare CheXpert DenseNet121 (512 x 512 input)
``101-elastic``                   ResNetAE101 autoencoder (224 x 224, 4608-d latent)
================================  ===========================================================

With internet the weights are downloaded (progress bar) into :func:`chexp.paths.weights_dir`
(``$CHEXP_WEIGHTS_DIR``, else torchxrayvision's cache ``~/.torchxrayvision/models_data``), all
four of them: torchxrayvision's own JF Healthcare loader hard-codes that cache, so chexp builds
the same JF model (torchxrayvision's config, classifier and ``forward``) from the file in
:func:`~chexp.paths.weights_dir` (:func:`load_jfhealthcare`). Offline, a
:class:`~chexp.errors.WeightsUnavailableError` names the file, its URL and the exact path to put
it at (:func:`ensure_all_weights`: every missing file at once). Upstream publishes no checksums:
the sha256 of a file is recorded beside it (``<file>.sha256``) when it is first downloaded or
placed, and every later load verifies it (a pinned ``sha256`` in :data:`PRETRAINED` is checked
from the first load on). A record whose line carries :data:`FIXTURE_NOTE` marks randomly
initialised stand-ins (:mod:`chexp.cohen.paper_fixture`): loading them warns
(:class:`~chexp.errors.ChexpWarning`), so that every page made with them says so.

``densenet121_architecture()`` and ``resnet_ae101_architecture()`` build the same
architectures with random weights, for timing and for tests (never for explanations).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pooch
import torch

from ..errors import ChecksumError, ChexpWarning, UnknownNameError, WeightsUnavailableError
from ..paths import weights_dir
from ._xrv_import import xrv
from .base import Autoencoder, Classifier, OutputKind

_RELEASE = "https://github.com/mlmed/torchxrayvision/releases/download/v1/"
#: words on a ``<file>.sha256`` record line of randomly initialised stand-in weights (the
#: ``paper`` profile's plumbing fixture, :mod:`chexp.cohen.paper_fixture`); loading them warns
FIXTURE_NOTE = "paper-profile plumbing fixture: randomly initialised weights, not the published ones"


@dataclass(frozen=True)
class PretrainedWeights:
    """A pretrained weight file: where it comes from and where chexp expects it."""

    name: str
    url: str
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def path(self) -> Path:
        return weights_dir() / self.filename

    @property
    def record(self) -> Path:
        """The ``<file>.sha256`` record beside the file."""
        return self.path.with_name(self.filename + ".sha256")


PRETRAINED: dict[str, PretrainedWeights] = {
    "densenet121-res224-all": PretrainedWeights(
        "densenet121-res224-all",
        xrv.models.model_urls["densenet121-res224-all"]["weights_url"],
    ),
    "densenet121-res224-mimic_ch": PretrainedWeights(
        "densenet121-res224-mimic_ch",
        xrv.models.model_urls["densenet121-res224-mimic_ch"]["weights_url"],
    ),
    "jfhealthcare": PretrainedWeights(
        "jfhealthcare",
        _RELEASE + "baseline_models_jfhealthcare-DenseNet121_pre_train.pth",
    ),
    "101-elastic": PretrainedWeights(
        "101-elastic", xrv.autoencoders.model_urls["101-elastic"]["weights_url"]
    ),
}


def warn_fixture(message: str) -> None:
    """Warn (:class:`~chexp.errors.ChexpWarning`) that a plumbing fixture is in use, every time
    (not only once per place, as the default filter would), whatever filter is in force."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", ChexpWarning)
        warnings.warn(message, ChexpWarning, stacklevel=3)


def _record_or_verify(weights: PretrainedWeights) -> Path:
    path, record = weights.path, weights.record
    expected = weights.sha256
    line = record.read_text() if record.is_file() else ""
    if expected is None and line:
        expected = line.split()[0]
    actual = pooch.file_hash(path, alg="sha256")
    if expected is not None and actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}. The weights "
            "were not loaded. Delete the file (and its .sha256) and download it again."
        )
    if not record.is_file():
        record.write_text(f"{actual}  {path.name}\n")
    if FIXTURE_NOTE in line:
        warn_fixture(f"{path.name} ({weights.name}): {FIXTURE_NOTE}; what is computed with them proves "
                     "plumbing, not the papers' numbers")
    return path


def ensure_weights(name: str, progress: bool = True) -> Path:
    """Local path of the pretrained weights ``name``, downloading them if needed (checked).

    Raises:
        UnknownNameError: ``name`` is not in :data:`PRETRAINED`.
        WeightsUnavailableError: not on disk and not downloadable; the message names the file,
            its URL and the path where to put it.
        ChecksumError: the file on disk does not match its recorded or pinned sha256.
    """
    try:
        weights = PRETRAINED[name]
    except KeyError:
        raise UnknownNameError(name, PRETRAINED, "pretrained model") from None
    path = weights.path
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            pooch.retrieve(
                weights.url,
                known_hash=f"sha256:{weights.sha256}" if weights.sha256 else None,
                fname=path.name,
                path=path.parent,
                progressbar=progress,
                downloader=pooch.HTTPDownloader(progressbar=progress, timeout=30),
            )
        except Exception as err:  # offline, firewalled, HTTP error, hash mismatch
            if path.exists():
                path.unlink()
            raise WeightsUnavailableError(
                f"pretrained weights {name!r} are not available: file {path.name} is not at "
                f"{path} and downloading it from {weights.url} failed ({type(err).__name__}). "
                f"On a machine with internet, download that URL and put the file at {path} "
                "(or set CHEXP_WEIGHTS_DIR to its folder)."
            ) from None
    return _record_or_verify(weights)


def ensure_all_weights(names: Iterable[str], progress: bool = True) -> dict[str, Path]:
    """:func:`ensure_weights` of every name in ``names`` (those of :data:`PRETRAINED`; other names
    need no download and are left out), trying them all before raising.

    Raises:
        WeightsUnavailableError: one or more files are missing and cannot be downloaded; the
            message names each of them (file, URL, path), separated by `` | ``.
        ChecksumError: a file on disk does not match its recorded or pinned sha256.
    """
    paths, missing = {}, []
    for name in dict.fromkeys(n for n in names if n in PRETRAINED):
        try:
            paths[name] = ensure_weights(name, progress=progress)
        except WeightsUnavailableError as err:
            missing.append(str(err))
    if missing:
        raise WeightsUnavailableError(f"{len(missing)} pretrained weight file(s) missing: " + " | ".join(missing))
    return paths


class XRVDenseNet(Classifier):
    """A torchxrayvision DenseNet121 (``xrv.models.DenseNet``) as a :class:`Classifier`.

    ``probability`` is exactly what torchxrayvision returns: sigmoid, then its operating-point
    normalisation (``op_norm``) when the weights have thresholds. ``logit`` is the output of the
    final linear layer. 18 columns; ``targets`` has empty strings where the model predicts nothing.
    """

    def __init__(self, model: xrv.models.DenseNet, output: OutputKind = "probability") -> None:
        super().__init__(list(model.targets), output=output, input_size=224)
        self.model = model

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.classifier(self.model.features2(x))

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.logits(x))
        thresholds = getattr(self.model, "op_threshs", None)
        return p if thresholds is None else xrv.models.op_norm(p, thresholds)


class JFHealthcare(Classifier):
    """The JF Healthcare CheXpert DenseNet121 (5 targets; torchxrayvision resizes inputs to 512)."""

    def __init__(self, model: torch.nn.Module, output: OutputKind = "probability") -> None:
        super().__init__(list(model.targets), output=output, input_size=None)
        model.apply_sigmoid = False
        self.model = model

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class XRVAutoencoder(Autoencoder):
    """torchxrayvision's ResNetAE (224 x 224 inputs, latent 512 x 3 x 3 = 4608 for ResNetAE101)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(input_size=224, size_multiple=1)
        self.model = model

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, check_resolution=False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z, image_size=[z.shape[0], 1, 224, 224])


def load_xrv_densenet(name: str, output: OutputKind = "probability") -> XRVDenseNet:
    """``densenet121-res224-all`` or ``densenet121-res224-mimic_ch``, pretrained, in eval mode."""
    if not name.startswith("densenet121-"):
        raise UnknownNameError(name, [k for k in PRETRAINED if k.startswith("densenet")], "DenseNet")
    path = ensure_weights(name)
    model = xrv.models.DenseNet(weights=name, cache_dir=str(path.parent))
    return XRVDenseNet(model, output=output).eval().requires_grad_(False)


def jfhealthcare_config() -> SimpleNamespace:
    """torchxrayvision's JF Healthcare configuration (``config/example.json``) without the ImageNet
    initialisation (``pretrained = False``) that its weights replace."""
    jf = xrv.baseline_models.jfhealthcare
    with open(Path(jf.thisfolder) / "config" / "example.json") as handle:
        return SimpleNamespace(**{**json.load(handle), "pretrained": False})


def _jf_densenet(weights: Path) -> torch.nn.Module:
    """torchxrayvision's JF Healthcare ``DenseNet`` with the state dict at ``weights``.

    Its constructor reads the file from a hard-coded ``~/.torchxrayvision/models_data``, and
    first downloads torchvision's ImageNet DenseNet121 (its config says ``pretrained``), which
    the file then overwrites entirely (a strict ``load_state_dict``). This builds the same object
    (:func:`jfhealthcare_config` in its ``Classifier`` inside ``DataParallel``, its ``forward``)
    and loads the file the way it does, from any folder and without the ImageNet download.
    """
    jf = xrv.baseline_models.jfhealthcare
    model = jf.DenseNet.__new__(jf.DenseNet)
    torch.nn.Module.__init__(model)
    model.cfg = jfhealthcare_config()
    network = torch.nn.DataParallel(jf.classifier.Classifier(model.cfg)).eval()
    network.module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.model, model.apply_sigmoid, model.pathologies = network, False, model.targets
    model.weights_filename_local = str(weights)
    return model


def load_jfhealthcare(output: OutputKind = "probability") -> JFHealthcare:
    """The JF Healthcare CheXpert model, pretrained, in eval mode (weights from
    :func:`~chexp.paths.weights_dir`, see :func:`_jf_densenet`)."""
    return JFHealthcare(_jf_densenet(ensure_weights("jfhealthcare")), output=output).eval().requires_grad_(False)


def load_resnet_ae101() -> XRVAutoencoder:
    """The ``101-elastic`` ResNetAE101 autoencoder, pretrained, in eval mode."""
    path = ensure_weights("101-elastic")
    model = xrv.autoencoders.ResNetAE(weights="101-elastic", cache_dir=str(path.parent))
    return XRVAutoencoder(model).eval().requires_grad_(False)


def densenet121_architecture(output: OutputKind = "probability", seed: int = 0) -> XRVDenseNet:
    """The XRV-all DenseNet121 architecture (18 outputs, 224 x 224) with RANDOM weights.

    For timing and tests only: its explanations mean nothing. Carries the XRV-all target names
    and operating points so that it behaves like the real model shape-wise.
    """
    torch.manual_seed(seed)
    meta = xrv.models.model_urls["densenet121-res224-all"]
    model = xrv.models.DenseNet(weights=None, op_threshs=torch.tensor(meta["op_threshs"]))
    model.targets = list(meta["labels"])
    model.pathologies = model.targets
    return XRVDenseNet(model, output=output).eval().requires_grad_(False)


def resnet_ae101_architecture(seed: int = 0) -> XRVAutoencoder:
    """The ResNetAE101 architecture (224 x 224, 4608-d latent) with RANDOM weights (timing, tests)."""
    torch.manual_seed(seed)
    return XRVAutoencoder(xrv.autoencoders.ResNetAE101()).eval().requires_grad_(False)
