"""The ``paper`` profile's plumbing fixture: phantom images in the NIH / RSNA / SIIM layouts and
randomly initialised weights under torchxrayvision's file names. It proves plumbing, not numbers.

:func:`write_paper_fixture` (``chexp paper-fixture DIR``, :mod:`chexp.cli.paper_fixture`) writes

* ``DIR/data``: for ``CHEXP_PAPER_DATA``. The rows the ``paper`` profile reads at a smoke size,
  under the names the manifests give them and in the layouts
  :class:`~chexp.cohen.paper.PaperImageFolder` reads: ``NIH/images/<Image Index>`` (8-bit grey
  PNG), ``RSNA/stage_2_train_images/<patientId>.dcm`` and
  ``SIIM/dicom-images-train/<study>/<series>/<ImageId>.dcm`` (8-bit MONOCHROME2 DICOM, JPEG
  baseline, so that pydicom's JPEG decoding is exercised). Every image is 1024 x 1024, the side
  the boxes and RLE masks are given in (a smaller image would crop the NIH / RSNA boxes and make
  the SIIM RLE fail). The pixels are phantoms (:mod:`chexp.phantoms`) scaled up from
  :data:`PHANTOM_SIDE`; a pool of :data:`POOL` phantoms is reused across the rows, so that the
  images have nothing to do with their labels or boxes.
* ``DIR/weights``: for ``CHEXP_WEIGHTS_DIR``. One file per entry of
  :data:`chexp.models.xrv.PRETRAINED`, under torchxrayvision's file name and in its format
  (the two DenseNet121 as pickled ``xrv.models.DenseNet`` modules with their number of outputs,
  the JF Healthcare DenseNet121 and the ResNetAE101 as state dicts), each with random weights
  and a ``<file>.sha256`` record carrying :data:`~chexp.models.xrv.FIXTURE_NOTE`: the real
  loaders read them unchanged and warn that they are the fixture.

Both folders hold :data:`MARKER` saying what they are; :func:`fixture_warning` (called by
:meth:`chexp.profiles.paper.PaperProfile.check`) warns when ``CHEXP_PAPER_DATA`` holds it.

Which rows are written (:data:`ROW_SOURCES`, each ``(n_samples, n_draw, seed) -> rows`` with
columns ``dataset, image``): every ``iou`` row of the Table 1 manifest (480 images: any
``samples(n, seed, task)`` finds its positives whatever ``n`` and ``seed``), and the balanced
draws ``samples(k, seed + o)`` (task ``None``) for ``k`` in ``n_samples, n_draw`` and the seed
offsets :data:`SEED_OFFSETS` the notebooks use. Another source of rows is one more entry of
:data:`ROW_SOURCES`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidParameterError

#: side of every fixture image (the NIH PNGs' and the RSNA / SIIM DICOMs' side)
SIDE = 1024
#: side the phantoms are rendered at before being scaled up to :data:`SIDE`
PHANTOM_SIDE = 256
#: distinct phantoms, reused across the rows
POOL = 24
#: seed offsets of the profile's balanced draws in the notebooks (``seed + 1``: Table 1's AUC, ...)
SEED_OFFSETS = tuple(range(8))
#: file written at the top of both fixture folders
MARKER = "PAPER_FIXTURE.md"
#: what the fixture is, in words used on every page made with it
LABEL = "paper-profile plumbing fixture: phantom images in the NIH/RSNA/SIIM layouts, randomly " \
        "initialised weights; proves plumbing, not numbers"


def _iou_rows(n_samples: int, n_draw: int, seed: int) -> pd.DataFrame:
    from .paper_labels import load_table1_manifest

    table = load_table1_manifest()
    return table.loc[table["selection"] == "iou", ["dataset", "image"]]


def _draw_rows(n_samples: int, n_draw: int, seed: int) -> pd.DataFrame:
    from ..profiles.paper import PaperProfile
    from .paper_labels import balanced_rows, load_table1_manifest

    table = load_table1_manifest()
    draws = [balanced_rows(table, PaperProfile.tasks, n, seed + offset)
             for n in (n_samples, n_draw) for offset in SEED_OFFSETS]
    return pd.concat(draws)[["dataset", "image"]]


def _chexplain_box_rows(n_samples: int, n_draw: int, seed: int) -> pd.DataFrame:
    """CheXplain-IBA Table 1's NIH box images (880; a notebook may draw any of them)."""
    from .paper import SAMPLES, load_paper_manifest

    table = load_paper_manifest(SAMPLES)
    return table.loc[table["selection"] == "chexplain-table1", ["dataset", "image"]].assign(dataset="NIH")


def _chexplain_training_rows(n_samples: int, n_draw: int, seed: int) -> pd.DataFrame:
    """The first ``n_draw`` NIH training images (IBA statistics: ``n_statistics <= n_draw``)."""
    from .chexplain_rows import training_rows

    return training_rows(n_draw)[["dataset", "image"]]


#: where the rows of a fixture come from: name -> (n_samples, n_draw, seed) -> columns dataset, image
ROW_SOURCES: dict[str, Callable[[int, int, int], pd.DataFrame]] = {
    "table1-iou": _iou_rows,
    "table1-draws": _draw_rows,
    "chexplain-boxes": _chexplain_box_rows,
    "chexplain-training": _chexplain_training_rows,
}


def fixture_rows(n_samples: int = 1, n_draw: int = 12, seed: int = 0) -> pd.DataFrame:
    """The images of a fixture (columns ``dataset, image``; each once, sorted): the union of
    :data:`ROW_SOURCES` for ``n_samples`` (per-task sizes), ``n_draw`` (sizes of the balanced
    draws) and ``seed``."""
    if n_samples < 1 or n_draw < 1:
        raise InvalidParameterError(f"n_samples and n_draw must be at least 1, got {n_samples} and {n_draw}")
    rows = pd.concat([source(n_samples, n_draw, seed) for source in ROW_SOURCES.values()])
    return rows.drop_duplicates().sort_values(["dataset", "image"], ignore_index=True)


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def _pool(seed: int) -> np.ndarray:
    """:data:`POOL` phantoms as 8-bit ``(POOL, SIDE, SIDE)`` (dense = bright, as a radiograph)."""
    from PIL import Image

    from ..phantoms import PhantomConfig, generate

    images = generate(POOL, seed=seed, config=PhantomConfig(size=PHANTOM_SIDE)).images[:, 0]
    grey = np.round((images + 1024.0) / 2048.0 * 255.0).clip(0, 255).astype(np.uint8)
    return np.stack([np.asarray(Image.fromarray(g).resize((SIDE, SIDE), Image.BILINEAR)) for g in grey])


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _jpeg(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _write_dicom(path: Path, jpeg: bytes, sop_uid: str, study_uid: str, series_uid: str) -> None:
    """An 8-bit MONOCHROME2 chest radiograph DICOM holding one JPEG-baseline frame."""
    import pydicom
    from PIL import Image
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    ds.SeriesDescription = LABEL[:64]  # LO: at most 64 characters
    ds.Columns, ds.Rows = Image.open(io.BytesIO(jpeg)).size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


def _nih(root: Path, image: str, png: bytes) -> None:
    path = root / "NIH" / "images" / image
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def _rsna(root: Path, image: str, jpeg: bytes) -> None:
    from pydicom.uid import generate_uid

    _write_dicom(root / "RSNA" / "stage_2_train_images" / f"{image}.dcm", jpeg, generate_uid(entropy_srcs=[image]),
                 generate_uid(entropy_srcs=[image, "study"]), generate_uid(entropy_srcs=[image, "series"]))


def _siim(root: Path, image: str, jpeg: bytes) -> None:
    from pydicom.uid import generate_uid

    study, series = generate_uid(entropy_srcs=[image, "study"]), generate_uid(entropy_srcs=[image, "series"])
    _write_dicom(root / "SIIM" / "dicom-images-train" / study / series / f"{image}.dcm", jpeg,
                 image, study, series)  # the SIIM ImageId is the SOP instance UID


#: dataset -> (its image encoder, the writer of one encoded image in its layout; see
#: :data:`chexp.cohen.paper.LAYOUTS`)
WRITERS: dict[str, tuple[Callable[[np.ndarray], bytes], Callable[[Path, str, bytes], None]]] = {
    "NIH": (_png, _nih), "RSNA": (_jpeg, _rsna), "SIIM": (_jpeg, _siim),
}


def write_image(root: str | Path, dataset: str, image: str, pixels: np.ndarray) -> None:
    """Write 8-bit grey ``pixels`` ``(H, W)`` as ``image`` of ``dataset`` under ``root``, in its layout
    (NIH: PNG; RSNA, SIIM: JPEG-baseline DICOM)."""
    encode, write = WRITERS[dataset]
    write(Path(root), image, encode(np.asarray(pixels, np.uint8)))


def write_images(root: str | Path, rows: pd.DataFrame, seed: int = 0) -> int:
    """Write a phantom (of a pool of :data:`POOL`, each encoded once) as the image of every row
    (columns ``dataset, image``) under ``root`` in its dataset's layout; returns the number written."""
    pool, encoded = _pool(seed), {}
    for k, row in enumerate(rows.itertuples()):
        encode, write = WRITERS[row.dataset]
        key = (k % POOL, encode)
        if key not in encoded:
            encoded[key] = encode(pool[k % POOL])
        write(Path(root), row.image, encoded[key])
    return len(rows)


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------
def _densenet(name: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import torch

        from ..models._xrv_import import xrv

        labels = xrv.models.model_urls[name]["labels"]
        torch.save(xrv.models.DenseNet(num_classes=len(labels)), path)  # torchxrayvision pickles the module

    return write


def _jfhealthcare(path: Path) -> None:
    import torch

    from ..models._xrv_import import xrv
    from ..models.xrv import jfhealthcare_config

    torch.save(xrv.baseline_models.jfhealthcare.classifier.Classifier(jfhealthcare_config()).state_dict(), path)


def _resnet_ae101(path: Path) -> None:
    import torch

    from ..models._xrv_import import xrv

    torch.save(xrv.autoencoders.ResNetAE101().state_dict(), path)


#: pretrained name -> writer of a randomly initialised file in torchxrayvision's format
WEIGHT_WRITERS: dict[str, Callable[[Path], None]] = {
    "densenet121-res224-all": _densenet("densenet121-res224-all"),
    "densenet121-res224-mimic_ch": _densenet("densenet121-res224-mimic_ch"),
    "jfhealthcare": _jfhealthcare,
    "101-elastic": _resnet_ae101,
}


def write_weights(folder: str | Path, seed: int = 0) -> list[Path]:
    """Randomly initialised weights for every entry of :data:`chexp.models.xrv.PRETRAINED`, under
    its file name in ``folder``, each with a ``.sha256`` record marked as the fixture."""
    import pooch
    import torch

    from ..models.xrv import FIXTURE_NOTE, PRETRAINED

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (name, weights) in enumerate(PRETRAINED.items()):
        torch.manual_seed(seed + k)
        path = folder / weights.filename
        WEIGHT_WRITERS[name](path)
        digest = pooch.file_hash(path, alg="sha256")
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}  {FIXTURE_NOTE}\n")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# the whole fixture
# --------------------------------------------------------------------------------------------
def _marker_text(what: str, n_samples: int, n_draw: int, seed: int) -> str:
    return (f"# {LABEL}\n\n{what}\n\nWritten by `chexp paper-fixture` (chexp.cohen.paper_fixture) with "
            f"n_samples={n_samples}, n_draw={n_draw}, seed={seed}. Nothing computed from this folder "
            "is a result of the papers.\n")


def write_paper_fixture(folder: str | Path, n_samples: int = 1, n_draw: int = 12, seed: int = 0) -> dict[str, Path]:
    """Write the plumbing fixture into ``folder`` (``data/`` and ``weights/``, see the module
    docstring); returns ``{"data": ..., "weights": ...}``, the values for ``CHEXP_PAPER_DATA``
    and ``CHEXP_WEIGHTS_DIR``.

    Args:
        folder: where to write (created).
        n_samples: per-task sizes of the smoke run (``n_samples`` of the notebooks).
        n_draw: sizes of its balanced draws without a task (``n_auc``, ``kit_pool``, ...); at least
            ``2 * 6`` gives every task a negative and a positive.
        seed: the run's seed (``seed`` of the notebooks); also seeds the phantoms and weights.
    """
    folder = Path(folder)
    data, weights = folder / "data", folder / "weights"
    rows = fixture_rows(n_samples, n_draw, seed)
    write_images(data, rows, seed)
    write_weights(weights, seed)
    counts = ", ".join(f"{n} {d}" for d, n in rows["dataset"].value_counts().sort_index().items())
    (data / MARKER).write_text(_marker_text(f"Phantom images ({counts}) named as the manifests' rows.",
                                            n_samples, n_draw, seed))
    (weights / MARKER).write_text(_marker_text("Randomly initialised weights under torchxrayvision's file names.",
                                               n_samples, n_draw, seed))
    return {"data": data, "weights": weights}


def fixture_warning(data_folder: str | Path | None) -> None:
    """Warn (:class:`~chexp.errors.ChexpWarning`, :func:`chexp.models.xrv.warn_fixture`) when
    ``data_folder`` is a plumbing fixture (it holds :data:`MARKER`)."""
    if data_folder and (Path(data_folder) / MARKER).is_file():
        from ..models.xrv import warn_fixture

        warn_fixture(f"CHEXP_PAPER_DATA={data_folder} is the {LABEL}")
