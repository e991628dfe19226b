"""Explain radiographs with both papers' methods: :func:`explain`, behind ``chexp explain``.

For each image it writes, under ``out/<file stem>/`` (the whole file name where two stems
collide)::

    report.html                     self-contained: inline images, the lambda slider (no kernel,
                                    no network), predictions, bounds, convergence, versions
    <target>/latentshift.gif        Latent Shift frames (and latentshift.mp4 with imageio-ffmpeg)
    <target>/latentshift-curve.png  prediction versus lambda (search evaluations, bounds)
    <target>/<method>.png / .npy    each method's map over the image, and the raw map (H, W)

and ``out/index.html`` with ``out/predictions.csv`` (one row per image, one column per target).
"""

from __future__ import annotations

import csv
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..attribution import Attribution
from ..errors import ChexpError, InvalidParameterError
from ..experiments.iba_setup import DEFAULT_STATISTICS_IMAGES, METHOD_DEFAULTS, Setup, fitted_statistics
from ..iba import bottleneck_layers, fit_statistics
from ..latentshift import (
    LatentShift,
    LatentShiftExplanation,
    get_map,
    get_search,
    mp4_available,
    postprocess,
    save_animation,
)
from ..methods import MethodSpec, get_method_specs
from ..models.base import Autoencoder, Classifier
from ..models.modules import resolve_layer
from ..progress import tqdm
from .inputs import LoadedImage, collect_inputs, load_input
from .models import ExplainModels, UserOutput, load_models
from .report import write_index, write_report

__all__ = ["ALIASES", "ExplainRun", "ImageResult", "LatentShiftResult", "MethodMap", "explain", "resolve_targets"]

#: short method names of the command line -> registry slugs
ALIASES: dict[str, str] = {"latentshift": "latentshift-max"}
DEFAULT_METHODS: tuple[str, ...] = ("latentshift-max", "iba", "gradcam")
_BOTTLENECK_NEEDS = ("bottleneck", "bottlenecks")
#: methods that hook into layers without naming one (guided backprop's ReLUs, LRP's rules)
_HOOKED = ("guided", "lrp")


@dataclass
class MethodMap:
    """One method's map for one target: ``map`` ``(H, W)`` float32 as the method returns it."""

    method: str
    display: str
    target: str
    map: np.ndarray
    png: Path
    npy: Path


@dataclass
class LatentShiftResult:
    """Latent Shift for one target: the explanation (batch of one) and the files written."""

    target: str
    explanation: LatentShiftExplanation
    gif: Path
    mp4: Path | None
    curve: Path

    def summary(self) -> dict[str, Any]:
        e = self.explanation
        return {
            "target": self.target, "search": e.search.name, "bounds": e.bounds[0].tolist(),
            "converged": [bool(v) for v in e.converged[0]], "at_limit": [bool(v) for v in e.at_limit[0]],
            "initial_prediction": float(e.initial_prediction[0]),
            "prediction_at_lower": float(e.predictions[0, 0]), "prediction_at_upper": float(e.predictions[0, -1]),
            "gif": str(self.gif), "mp4": str(self.mp4) if self.mp4 else None, "curve": str(self.curve),
        }


@dataclass
class ImageResult:
    """Everything explained for one input file."""

    path: Path
    folder: Path
    image: np.ndarray
    predictions: dict[str, float]
    targets: list[str]
    maps: list[MethodMap] = field(default_factory=list)
    latentshift: dict[str, LatentShiftResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    report: Path | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "folder": str(self.folder), "report": str(self.report),
            "predictions": self.predictions, "targets": self.targets, "seconds": round(self.seconds, 3),
            "warnings": self.warnings, "latentshift": [r.summary() for r in self.latentshift.values()],
            "maps": [{"method": m.method, "target": m.target, "png": str(m.png), "npy": str(m.npy)} for m in self.maps],
        }


@dataclass
class ExplainRun:
    """What :func:`explain` did: per-image results, files it could not read, the index files."""

    out: Path
    model: str
    methods: list[str]
    images: list[ImageResult]
    failures: dict[str, str]
    notes: list[str]
    index: Path | None = None
    csv: Path | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "out": str(self.out), "model": self.model, "methods": self.methods, "notes": self.notes,
            "index": str(self.index) if self.index else None, "csv": str(self.csv) if self.csv else None,
            "images": [r.summary() for r in self.images], "failures": self.failures,
        }


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "image"


def resolve_targets(classifier: Classifier, targets: str | Sequence[str], scores: np.ndarray) -> list[str]:
    """Target names for one image: the given names (checked), or ``"top"`` / ``"topN"``: the N
    (default 1) highest-scoring outputs, highest first.

    Raises:
        UnknownTargetError: a name the classifier does not predict.
    """
    names = [targets] if isinstance(targets, str) else list(targets)
    out: list[str] = []
    for name in names:
        top = re.fullmatch(r"top(\d*)", name)
        if top:
            valid = [i for i, t in enumerate(classifier.targets) if t]
            order = sorted(valid, key=lambda i: -scores[i])[: int(top.group(1) or 1)]
            out.extend(classifier.targets[i] for i in order)
        else:
            out.append(classifier.targets[classifier.target_index(name)])
    return list(dict.fromkeys(out))


def _specs(methods: Sequence[str]) -> list[MethodSpec]:
    if not methods:
        raise InvalidParameterError("methods: give at least one method (chexp methods lists them)")
    return get_method_specs([ALIASES.get(m, m) for m in methods])


def _fit_on(clf: Classifier, wanted: list[str], images: torch.Tensor) -> dict[str, Any]:
    """Statistics of ``wanted`` fitted on all of ``images`` (few, by the user's choice: the
    estimator's "fitted on only" warning is replaced by the note the caller writes)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IBA statistics of .* fitted on only")
        fitted = fit_statistics(clf, wanted, images, images.shape[0], 32, False)
    return dict(zip(wanted, fitted, strict=True))


def _statistics(models: ExplainModels, wanted: list[str], images: torch.Tensor,
                statistics_images: str | Path | None, n_statistics: int) -> tuple[dict[str, Any], list[str]]:
    clf = models.classifier
    if statistics_images is not None:
        files, _ = collect_inputs([statistics_images])
        x = torch.from_numpy(np.stack([load_input(p, models.size).image for p in files]))
        return _fit_on(clf, wanted, x.to(images.device)), [
            f"IBA statistics fitted on the {len(files)} images of {statistics_images}"]
    if models.training_images is not None:
        stats = fitted_statistics(clf, wanted, models.training_images, n_statistics)
        count = min(s.count for s in stats.values())
        return stats, [f"IBA statistics fitted on {count} training images of the {models.name} model"]
    note = (f"IBA statistics fitted on the {images.shape[0]} explained image(s): no training images are known "
            "for this model; give a folder of training-like images (--statistics-images) for meaningful IBA maps")
    warnings.warn(note, UserWarning, stacklevel=3)
    return _fit_on(clf, wanted, images), [note]


def _iba_layers(clf: Classifier, layer: str | None, layers: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    """IBA's bottleneck and Multi-layer IBA's layers (shallow to deep): those given, else the model
    family's (:func:`~chexp.iba.bottleneck_layers`); given only one of them, the other follows it
    (the bottleneck alone for Multi-layer IBA, or the deepest of the layers as the bottleneck)."""
    if layer is None and not layers:
        family = bottleneck_layers(clf)  # UnknownLayerError lists the model's layers
        layer, layers = family.layer, family.layers
    elif layer is None:
        layer = list(layers)[-1]
    elif not layers:
        layers = (layer,)
    return resolve_layer(clf, layer)[0], tuple(resolve_layer(clf, name)[0] for name in layers)


def _setup(models: ExplainModels, specs: list[MethodSpec], images: torch.Tensor,
           statistics_images: str | Path | None, n_statistics: int,
           iba_layer: str | None = None, iba_layers: Sequence[str] | None = None) -> tuple[Setup | None, list[str]]:
    """The IBA setup (layers and statistics) when a method of ``specs`` needs one, else ``None``."""
    device = images.device
    if not any(s.layer in _BOTTLENECK_NEEDS for s in specs):
        return None, []
    layer, layers = _iba_layers(models.classifier, iba_layer, iba_layers)
    wanted = list(dict.fromkeys([layer, *layers]))
    stats, notes = _statistics(models, wanted, images, statistics_images, n_statistics)
    return Setup(models.classifier, layer, layers, stats, device), notes


def _build(spec: MethodSpec, clf: Classifier, setup: Setup | None) -> Attribution:
    """A method other than Latent Shift, with CheXplain-IBA's settings (:data:`METHOD_DEFAULTS`)."""
    if spec.layer in _BOTTLENECK_NEEDS:
        assert setup is not None  # _setup builds one whenever a method needs it
        return setup.method(spec.slug)
    return spec.build(clf, **METHOD_DEFAULTS.get(spec.slug, {}))


def _check_scripted(clf: Classifier, specs: list[MethodSpec]) -> None:
    """TorchScript modules take no forward hooks: refuse the methods that need them up front."""
    if not isinstance(getattr(clf, "module", None), torch.jit.ScriptModule):
        return
    hooked = [s.slug for s in specs if s.layer is not None or s.slug in _HOOKED]
    if hooked:
        raise InvalidParameterError(
            f"methods {', '.join(hooked)} hook into the model's layers, which a TorchScript model does not "
            "allow; give the model as module:factory, or use gradient methods (grad, gradxinput, integrated, "
            "iterativedelete, latentshift)"
        )


def _save_overlay(image: np.ndarray, heat: np.ndarray, path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2, 3.4), dpi=100)
    ax = fig.add_axes((0, 0, 1, 0.92))
    ax.imshow(image, cmap="gray", vmin=-1024, vmax=1024)
    pos = np.clip(heat, 0, None)
    scale = float(pos.max())
    ax.imshow(pos / scale if scale > 0 else pos, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=8, y=0.99)
    fig.savefig(path)
    return path


def _save_curve(result: LatentShiftExplanation, path: Path) -> Path:
    from matplotlib.figure import Figure

    from ..plotting.latentshift import plot_prediction_curve

    fig = Figure(figsize=(5, 3.2), dpi=100, layout="tight")
    plot_prediction_curve(result, 0, ax=fig.add_subplot())
    fig.savefig(path)
    return path


def _write_map(item: ImageResult, spec: MethodSpec, target: str, heat: np.ndarray, folder: Path) -> MethodMap:
    npy, png = folder / f"{spec.slug}.npy", folder / f"{spec.slug}.png"
    np.save(npy, heat.astype(np.float32))
    _save_overlay(item.image, heat, png, f"{spec.display}: {target}")
    return MethodMap(spec.slug, spec.display, target, heat.astype(np.float32), png, npy)


def _latent_shift(item: ImageResult, specs: list[MethodSpec], target: str, x: torch.Tensor, clf: Classifier,
                  ae: Autoencoder, search: str | None, n_frames: int, folder: Path) -> None:
    method = LatentShift(clf, ae, search=search, n_frames=n_frames)
    expl = method.explain(x, target)
    gif = save_animation(expl, folder / "latentshift.gif", scale=max(1, 256 // x.shape[-1]))
    mp4 = save_animation(expl, folder / "latentshift.mp4") if mp4_available() else None
    curve = _save_curve(expl, folder / "latentshift-curve.png")
    item.latentshift[target] = LatentShiftResult(target, expl, gif, mp4, curve)
    for spec in specs:
        heat = postprocess(get_map(spec.settings["map_method"])(expl.frames, expl.reconstruction), 0.0, None)
        item.maps.append(_write_map(item, spec, target, heat[0].cpu().numpy(), folder))


def _folders(out: Path, files: Sequence[Path]) -> dict[Path, Path]:
    """Output folder per input: the file's stem, or its whole name where two stems collide."""
    stems = [p.stem for p in files]
    return {p: out / _safe(p.stem if stems.count(p.stem) == 1 else p.name) for p in files}


def _explain_image(loaded: LoadedImage, models: ExplainModels, setup: Setup | None, specs: list[MethodSpec],
                   targets: str | Sequence[str], folder: Path, search: str | None, n_frames: int,
                   device: torch.device) -> ImageResult:
    start = time.perf_counter()
    clf = models.classifier
    x = torch.from_numpy(loaded.image)[None].to(device)
    with torch.no_grad():
        scores = clf(x)[0].double().cpu().numpy()
    item = ImageResult(
        loaded.path, folder, loaded.image[0],
        {t: float(s) for t, s in zip(clf.targets, scores, strict=True) if t},
        resolve_targets(clf, targets, scores), warnings=list(loaded.warnings),
    )
    shifts = [s for s in specs if s.needs_autoencoder]
    for target in item.targets:
        sub = folder / _safe(target)
        sub.mkdir(parents=True, exist_ok=True)
        if shifts:
            assert models.autoencoder is not None  # checked by explain()
            _latent_shift(item, shifts, target, x, clf, models.autoencoder, search, n_frames, sub)
        for spec in specs:
            if not spec.needs_autoencoder:
                heat = _build(spec, clf, setup).attribute(x, target).detach().float().cpu().numpy()[0, 0]
                item.maps.append(_write_map(item, spec, target, heat, sub))
    item.seconds = time.perf_counter() - start
    return item


def _write_csv(run: ExplainRun) -> Path:
    path = run.out / "predictions.csv"
    names = list(dict.fromkeys(t for r in run.images for t in r.predictions))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "status", "explained_targets", *names])
        for r in run.images:
            writer.writerow([str(r.path), "ok", ";".join(r.targets), *(f"{r.predictions[n]:.6f}" for n in names)])
        for path_text, message in run.failures.items():
            writer.writerow([path_text, f"error: {message}", "", *([""] * len(names))])
    return path


def explain(
    inputs: str | Path | Sequence[str | Path],
    model: str | Classifier,
    targets: str | Sequence[str] = "top",
    methods: Sequence[str] = DEFAULT_METHODS,
    out: str | Path = "chexp-explain",
    *,
    device: str = "cpu",
    autoencoder: str | Autoencoder | None = None,
    search: str | None = None,
    n_frames: int = 10,
    statistics_images: str | Path | None = None,
    n_statistics: int = DEFAULT_STATISTICS_IMAGES,
    model_targets: Sequence[str] | None = None,
    input_size: int | None = None,
    model_returns: UserOutput = "logit",
    iba_layer: str | None = None,
    iba_layers: Sequence[str] | None = None,
    progress: bool = True,
) -> ExplainRun:
    """Explain radiograph files with both papers' methods and write the results to ``out``.

    Args:
        inputs: image files (PNG, JPEG, DICOM) and/or folders of them.
        model: ``"phantom"``, ``"cohen"``, a torchxrayvision name, a TorchScript file, a
            ``module:factory``, or a :class:`~chexp.models.Classifier` (see :mod:`chexp.explain.models`).
        targets: output name(s), or ``"top"`` / ``"topN"``: each image's highest prediction(s).
        methods: slugs or display names of :data:`chexp.methods.METHODS` (``"latentshift"`` means
            ``latentshift-max``); every Latent Shift map comes from one run of the search.
        out: output folder (created).
        device: torch device.
        autoencoder: for Latent Shift: a name (``phantom``, ``cohen``, ``101-elastic``) or an
            :class:`~chexp.models.Autoencoder`; default: the model's own (none for a user's model).
        search: lambda search rule (:data:`chexp.latentshift.SEARCH_RULES`; default the paper's).
        n_frames: Latent Shift frames.
        statistics_images: a folder of training-like images for the IBA statistics. Default: the
            training images of chexp's models (cached); for other models the explained images
            themselves, with a warning (the maps are then only indicative).
        n_statistics: training images for the IBA statistics of chexp's models.
        model_targets / input_size / model_returns: for a user's model
            (:func:`chexp.explain.models.load_user_model`).
        iba_layer / iba_layers: IBA's bottleneck layer and Multi-layer IBA's layers (shallow to
            deep), dotted names of ``named_modules()``; default: the model family's (DenseNet121's
            dense block 3 and blocks 1-3, chexp's small CNN), required for other architectures.
        progress: a progress bar over the images.

    Returns:
        :class:`ExplainRun`. A file that cannot be read is recorded in ``failures`` and skipped
        when several files are explained; a single file raises.

    Raises:
        CorruptFileError / DataUnavailableError: the only input cannot be read / does not exist.
        UnknownMethodError, UnknownTargetError, UnknownNameError (search rule),
            InvalidParameterError: bad arguments (checked before any image is explained).
    """
    specs = _specs(methods)
    get_search(search)  # an unknown rule fails before any work
    files, folder = collect_inputs([inputs] if isinstance(inputs, (str, Path)) else inputs)
    models = load_models(model, autoencoder, device, model_targets, input_size, model_returns)
    _check_scripted(models.classifier, specs)
    if any(s.needs_autoencoder for s in specs) and models.autoencoder is None:
        raise InvalidParameterError(
            f"Latent Shift needs an autoencoder and model {models.name!r} has none: give one "
            "(--autoencoder NAME, e.g. 101-elastic) or leave the latentshift methods out"
        )
    resolve_targets(models.classifier, targets, np.zeros(len(models.classifier.targets)))  # names checked now
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loaded: list[LoadedImage] = []
    failures: dict[str, str] = {}
    for path in files:
        try:
            loaded.append(load_input(path, models.size))
        except ChexpError as err:
            if len(files) == 1 and not folder:
                raise
            failures[str(path)] = str(err)
    torch_device = torch.device(device)
    batch = torch.from_numpy(np.stack([item.image for item in loaded])) if loaded else torch.zeros(0)
    setup, notes = _setup(models, specs if loaded else [], batch.to(torch_device), statistics_images, n_statistics,
                          iba_layer, iba_layers)
    run = ExplainRun(out, models.name, [s.slug for s in specs], [], failures, notes)
    folders = _folders(out, [item.path for item in loaded])
    for item in tqdm(loaded, desc="explain", unit="image", disable=not progress):
        result = _explain_image(item, models, setup, specs, targets, folders[item.path], search, n_frames,
                                torch_device)
        result.report = write_report(result, run)
        run.images.append(result)
    run.csv = _write_csv(run)
    run.index = write_index(run)
    return run
