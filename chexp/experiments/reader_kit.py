"""A kit for running a new Gifsplanation-style reader study (paper section 4.6, Appendix F).

It builds a study *packet* from any classifier, autoencoder and labelled images, in the format
of the released study (``trial_record.json.gz`` and ``reader-results/read{0,1}-reader{k}.csv``
of github.com/mlmed/gifsplanation), so that the filled-in ratings can be analysed with the same
code as the real study (:func:`load_packet_ratings` then
:func:`chexp.metrics.reader_study.wilcoxon_summary`).

For every example the packet holds, under ``images/``:

* ``<id>-image.png``: the input;
* ``<id>-grad.png``, ``<id>-guided.png``, ``<id>-integrated.png``: the traditional maps (method
  A), and ``<id>-traditional.png``, a panel of the three side by side;
* ``<id>-latentshift-max.png`` and ``<id>-latentshift.gif`` (or ``.mp4``): method B, the 2D map
  and the animation (frames forward then backward, prediction written on each frame).

Presentation is randomised with a seeded generator: the order of the examples, and ``trial``
(0: shown with the traditional maps in the first read, 1: with Latent Shift first; the second
read shows the other method), balanced within each (target, label) group as in the real study.
``read{r}.html`` lists, for read ``r``, every example with the method to show.

Typical use::

    examples = select_examples(classifier, samples, tasks=["Cardiomegaly"], n_per_label=2)
    packet = build_packet(classifier, autoencoder, examples, "study/", seed=0)
"""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..errors import CorruptFileError, DataUnavailableError, InvalidParameterError
from ..latentshift import LatentShift, save_animation
from ..latentshift.animation import mp4_available
from ..metrics.reader_study import METHODS, QUESTIONS
from ..models.base import Autoencoder, Classifier
from ..progress import tqdm
from .maps import compute_maps

__all__ = ["TRADITIONAL", "Packet", "StudyExample", "build_packet", "load_packet_ratings", "select_examples"]

#: Method A of the paper: the traditional maps shown together.
TRADITIONAL: tuple[str, ...] = ("grad", "guided", "integrated")


@dataclass
class StudyExample:
    """One prediction to be rated.

    Attributes:
        id: unique name (used in file names); image: ``(1, 1, H, W)`` in [-1024, 1024].
        target: the predicted finding; label: 1 true positive, 0 false positive.
        prediction: the classifier's score for ``target``; dataset, source: provenance.
    """

    id: str
    image: torch.Tensor
    target: str
    label: int
    prediction: float
    dataset: str = ""
    source: dict[str, Any] = field(default_factory=dict)


@dataclass
class Packet:
    """A built study packet: its folder, the trial record (in presentation order) and the
    blank rating sheets."""

    folder: Path
    record: list[dict[str, Any]]
    rating_sheets: list[Path]

    @property
    def n_examples(self) -> int:
        return len(self.record)


def select_examples(
    classifier: Classifier,
    samples: Any,
    tasks: Sequence[str],
    n_per_label: int,
    threshold: float = 0.5,
    device: str | torch.device = "cpu",
    dataset: str = "",
) -> list[StudyExample]:
    """Positive predictions (score > ``threshold``) split into true and false positives.

    As in the paper: for each task, up to ``n_per_label`` images with a positive label (true
    positives) and up to ``n_per_label`` with a negative label (false positives), all predicted
    positive; the highest-scoring first. Fewer are returned when the samples hold fewer.

    Args:
        samples: a :class:`~chexp.profiles.SampleSet` (images, labels, targets, ids).
    """
    if n_per_label < 1:
        raise InvalidParameterError(f"n_per_label must be at least 1, got {n_per_label}")
    with torch.no_grad():
        scores = torch.cat([classifier(samples.images[i : i + 64].to(device)).cpu()
                            for i in range(0, len(samples), 64)]).numpy()
    out = []
    for task in tasks:
        j, col = classifier.target_index(task), list(samples.targets).index(task)
        for label in (1, 0):
            rows = np.flatnonzero((samples.labels[:, col] == label) & (scores[:, j] > threshold))
            rows = rows[np.argsort(-scores[rows, j], kind="stable")][:n_per_label]
            for r in rows:
                sid = samples.ids[r] if samples.ids else str(r)
                name = _file_safe(f"{dataset or 'data'}-{sid}-{task}-{label}")  # ids may hold '/'
                out.append(StudyExample(name,
                                        samples.images[r : r + 1], task, int(label), float(scores[r, j]),
                                        dataset, {"id": sid, "row": int(r)}))
    return out


def _file_safe(name: str) -> str:
    """``name`` with every character other than letters, digits, ``.``, ``_`` and ``-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _rgb(image: np.ndarray) -> np.ndarray:
    g = (np.clip((image + 1024.0) / 2048.0, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.stack([g] * 3, axis=-1)


def _overlay(image: np.ndarray, amap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    import matplotlib

    base = _rgb(image).astype(float) / 255.0
    m = np.asarray(amap, dtype=float)
    m = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else np.zeros_like(m)
    heat = matplotlib.colormaps["jet"](m)[..., :3]
    return ((1 - alpha * m[..., None]) * base + alpha * m[..., None] * heat).clip(0, 1)


def _save_png(rgb: np.ndarray, path: Path, scale: int = 1) -> str:
    arr = (rgb * 255 + 0.5).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
    if scale > 1:
        arr = np.kron(arr, np.ones((scale, scale, 1), dtype=np.uint8))
    Image.fromarray(arr).save(path)
    return path.name


def _balanced_trials(examples: Sequence[StudyExample], rng: np.random.Generator) -> np.ndarray:
    """0/1 per example, half of each (target, label) group each way (odd groups: random extra)."""
    trial = np.zeros(len(examples), dtype=int)
    groups: dict[tuple[str, int], list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault((e.target, e.label), []).append(i)
    for idx in groups.values():
        bits = np.array([k % 2 for k in range(len(idx))])
        trial[idx] = rng.permutation(bits)
    return trial


def build_packet(
    classifier: Classifier,
    autoencoder: Autoencoder,
    examples: Sequence[StudyExample],
    output_dir: str | Path,
    seed: int = 0,
    n_readers: int = 2,
    model_name: str = "",
    video: str = "gif",
    scale: int = 2,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Packet:
    """Write a study packet for ``examples`` into ``output_dir`` (see the module docstring).

    Args:
        video: ``"gif"`` or ``"mp4"`` (MP4 needs ``imageio-ffmpeg``).
        scale: integer upscaling of the written images (small phantoms are 128 px).

    Returns:
        the :class:`Packet`.
    """
    if not examples:
        raise InvalidParameterError("no examples: select_examples found no positive predictions to rate")
    if video not in ("gif", "mp4"):
        raise InvalidParameterError(f"video must be 'gif' or 'mp4', got {video!r}")
    if video == "mp4" and not mp4_available():
        raise InvalidParameterError("video='mp4' needs the imageio-ffmpeg package; use video='gif'")
    if n_readers < 1:
        raise InvalidParameterError(f"n_readers must be at least 1, got {n_readers}")
    ids = [e.id for e in examples]
    if len(set(ids)) != len(ids):
        raise InvalidParameterError("example ids must be unique")
    folder = Path(output_dir)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "reader-results").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(examples))
    trials = _balanced_trials(examples, rng)
    ls = LatentShift(classifier, autoencoder)
    record = []
    for pos, i in enumerate(tqdm(order, desc="study packet", disable=not progress), start=1):
        e = examples[i]
        x = e.image.to(device)
        image = x[0, 0].cpu().numpy()
        maps = compute_maps(TRADITIONAL, classifier, None, x, e.target)
        expl = ls.explain(x, e.target)
        img = folder / "images"
        attribs = {"image": "images/" + _save_png(_rgb(image), img / f"{e.id}-image.png", scale)}
        overlays = {name: _overlay(image, maps[name][0]) for name in TRADITIONAL}
        for name, rgb in overlays.items():
            attribs[name] = "images/" + _save_png(rgb, img / f"{e.id}-{name}.png", scale)
        attribs["traditional"] = "images/" + _save_png(
            np.concatenate([_rgb(image) / 255.0, *overlays.values()], axis=1), img / f"{e.id}-traditional.png", scale)
        attribs["latentshift-max"] = "images/" + _save_png(
            _overlay(image, expl.heatmap[0].cpu().numpy()), img / f"{e.id}-latentshift-max.png", scale)
        anim = save_animation(expl, img / f"{e.id}-latentshift.{video}", scale=scale)
        attribs["latentshift"] = "images/" + anim.name
        record.append({
            "id": e.id, "idx": str(i), "dataset": e.dataset, "source": e.source, "target": e.target,
            "label": int(e.label), "model_used": model_name or _model_name(classifier), "pred": e.prediction,
            "attribs": attribs, "trialid": pos, "trial": int(trials[i]),
        })
    with gzip.open(folder / "trial_record.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(record, handle)
    sheets = []
    blank = pd.DataFrame({"Example": np.arange(1, len(record) + 1), **{q: [""] * len(record) for q in QUESTIONS}})
    for read in (0, 1):
        for reader in range(1, n_readers + 1):
            path = folder / "reader-results" / f"read{read}-reader{reader}.csv"
            blank.to_csv(path, index=False)
            sheets.append(path)
        _write_read_page(folder / f"read{read}.html", record, read)
    return Packet(folder, record, sheets)


def _model_name(classifier: Classifier) -> str:
    card = getattr(classifier, "card", None)
    return f"{card.name}-{card.config_hash}" if card is not None else type(classifier).__name__


def _write_read_page(path: Path, record: Sequence[dict[str, Any]], read: int) -> None:
    """A static page for one read: each example with the method it is shown with."""
    parts = [f"<html><head><meta charset='utf-8'><title>Read {read}</title></head><body>",
             f"<h1>Read {read}</h1><p>Rate each example on the sheet "
             f"<code>reader-results/read{read}-reader&lt;k&gt;.csv</code>: "
             + "; ".join(html.escape(q) for q in QUESTIONS) + ".</p>"]
    for k, r in enumerate(record, start=1):
        method = METHODS[r["trial"] if read == 0 else 1 - r["trial"]]
        a = r["attribs"]
        shown = [a["traditional"]] if method == "traditional" else [a["latentshift-max"], a["latentshift"]]
        imgs = "".join(f"<img src='{html.escape(s)}' style='height:256px;margin:2px'>" for s in shown)
        parts.append(f"<h3>Example {k}: the model predicts {html.escape(r['target'])} "
                     f"(score {r['pred']:.2f})</h3><img src='{html.escape(a['image'])}' "
                     f"style='height:256px;margin:2px'>{imgs}")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def load_packet_ratings(folder: str | Path) -> pd.DataFrame:
    """The filled-in ratings of a packet in the long form of
    :func:`chexp.metrics.reader_study.load_reader_study` (columns ``reader``, ``read``,
    ``example``, ``target``, ``label``, ``dataset``, ``method``, ``confidence``,
    ``correct_feature``), ready for :func:`~chexp.metrics.reader_study.wilcoxon_summary`.

    Raises:
        CorruptFileError: a sheet has a blank or out-of-range (not 1-5) rating (a ``ValueError``).
        DataUnavailableError: the folder holds no rating sheets (a ``FileNotFoundError``).
    """
    folder = Path(folder)
    with gzip.open(folder / "trial_record.json.gz", "rt", encoding="utf-8") as handle:
        record = json.load(handle)
    info = pd.DataFrame({"example": np.arange(1, len(record) + 1), "target": [r["target"] for r in record],
                         "label": [int(r["label"]) for r in record], "dataset": [r["dataset"] for r in record],
                         "trial": [int(r["trial"]) for r in record]})
    parts = []
    for sheet in sorted((folder / "reader-results").glob("read*-reader*.csv")):
        match = re.fullmatch(r"read(\d+)-reader(\d+)", sheet.stem)
        if match is None:
            continue
        read, reader = int(match[1]), int(match[2])
        df = pd.read_csv(sheet).rename(columns={"Example": "example", **QUESTIONS})
        values = df[list(QUESTIONS.values())]
        if values.isna().any().any() or not values.isin([1, 2, 3, 4, 5]).all().all():
            raise CorruptFileError(f"{sheet} has blank or out-of-range ratings (each must be 1-5)")
        parts.append(df.assign(read=read, reader=reader))
    if not parts:
        raise DataUnavailableError(f"{folder / 'reader-results'} holds no rating sheets")
    out = pd.concat(parts, ignore_index=True).merge(info, on="example", how="left", validate="m:1")
    out["method"] = np.where(out["read"] == 0, out["trial"], 1 - out["trial"])
    out["method"] = out["method"].map(METHODS)
    cols = ["reader", "read", "example", "target", "label", "dataset", "method", *QUESTIONS.values()]
    return out[cols].sort_values(["reader", "example", "read"], ignore_index=True)
