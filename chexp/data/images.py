"""Reading radiographs into the torchxrayvision convention.

One channel, float32, values in [-1024, 1024] (``(2 * img / maxval - 1) * 1024``), center
cropped to a square on the long side and resized, using torchxrayvision's own transforms
(:class:`torchxrayvision.datasets.XRayCenterCrop`, :class:`~torchxrayvision.datasets.XRayResizer`),
so that images read here match what torchxrayvision models were trained on.

Supported, as a hospital export holds them:

* PNG and JPEG, 8-bit and 16-bit; grey, grey + alpha, RGB, RGBA or palette. A 16-bit PNG whose
  ``sBIT`` chunk says fewer significant bits (a 12-bit detector image) is scaled by
  ``2 ** sBIT - 1``; a 16-bit PNG without ``sBIT`` whose maximum is below 4096 is taken as 12-bit
  and scaled by 4095, with an :class:`ImageQualityWarning` (read as 16-bit it would be almost
  black, about -947..-909).
* DICOM MONOCHROME1 and 2, with or without the 128-byte preamble (pydicom decides when there is
  no ``DICM`` marker), ``BitsStored`` honoured; the VOI LUT (``VOILUTSequence``) or the window
  (``WindowCenter`` / ``WindowWidth``, after the modality rescale) is applied where present and its
  output range is mapped to [-1024, 1024].

:func:`read_image` warns (:class:`ImageQualityWarning`) on an image whose shorter side is below
the requested size (it would be upsampled) and on a constant image. An empty, truncated or
non-image file raises :class:`~chexp.errors.CorruptFileError` naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import skimage.io
import skimage.transform

from ..errors import ChexpError, CorruptFileError, DataUnavailableError, ImageQualityWarning, InputRangeError

__all__ = [
    "ImageQualityWarning", "box_to_mask", "center_crop_resize", "crop_resize_mask", "read_image", "read_raw",
    "to_xrv_range",
]

_MAXVAL = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
#: a 16-bit PNG without sBIT whose maximum is below this is read as 12-bit
_TWELVE_BIT_LIMIT = 4096


def to_xrv_range(img: np.ndarray, maxval: float) -> np.ndarray:
    """Scale raw pixel values in [0, maxval] to [-1024, 1024] (float32, same shape).

    Raises:
        InputRangeError: values below 0 or above ``maxval`` (the wrong bit depth, or an image
            that is already normalised).
    """
    img = np.asarray(img)
    lo, hi = float(img.min()), float(img.max())
    if lo < 0 or hi > maxval:
        raise InputRangeError(
            f"pixel values must lie in [0, {maxval:g}] to be scaled, got [{lo:g}, {hi:g}]"
        )
    from ..models._xrv_import import xrv  # torchxrayvision imports torchvision: only when needed

    return xrv.utils.normalize(img, maxval)


def _header(path: Path, n: int = 132) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(n)


def _is_dicom(path: Path, header: bytes) -> bool:
    """A ``DICM`` marker after the preamble, or (no preamble) a file pydicom parses as a dataset
    with image rows and columns."""
    if len(header) >= 132 and header[128:132] == b"DICM":
        return True
    if header.startswith((_PNG_MAGIC, _JPEG_MAGIC)) or len(header) < 8:
        return False
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        return "Rows" in ds and "Columns" in ds
    except Exception:  # pydicom raises many kinds on a non-DICOM file
        return False


def _png_bit_depths(path: Path) -> tuple[int, int | None]:
    """(bit depth of the IHDR chunk, significant bits of the grey / first colour channel from the
    ``sBIT`` chunk or ``None``) of a PNG file."""
    data = path.read_bytes()
    depth, significant, pos = 8, None, len(_PNG_MAGIC)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR" and len(body) >= 9:
            depth = body[8]
        elif kind == b"sBIT" and body:
            significant = body[0]
        elif kind == b"IDAT":
            break
        pos += 12 + length
    return depth, significant


def _png_maxval(path: Path, img: np.ndarray) -> float | None:
    """The maximum value of a 16-bit PNG's pixel range when it is not 65535 (sBIT, or a 12-bit
    image in a 16-bit container), else ``None``."""
    depth, significant = _png_bit_depths(path)
    if depth != 16 or img.dtype != np.uint16:
        return None
    peak = int(img.max()) if img.size else 0
    if significant is not None and 0 < significant < 16:
        # the PNG spec stores samples scaled to 16 bits (peak above 2**sBIT - 1: read as 16-bit);
        # exporters that write the raw 12-bit values need 2**sBIT - 1
        return float(2**significant - 1) if peak < 2**significant else None
    if significant is None and peak < _TWELVE_BIT_LIMIT:
        warnings.warn(
            f"{path}: 16-bit PNG without an sBIT chunk and maximum {peak} < {_TWELVE_BIT_LIMIT}: "
            "read as a 12-bit image (scaled by 4095); save it with an sBIT chunk, or as 8-bit, to be explicit",
            ImageQualityWarning, stacklevel=3,
        )
        return float(_TWELVE_BIT_LIMIT - 1)
    return None


def _window(values: np.ndarray, ds: object) -> np.ndarray | None:
    """DICOM linear windowing (PS3.3 C.11.2.1.2) of modality values to [0, 1], or ``None`` when
    the dataset has no window."""
    from pydicom.multival import MultiValue

    values_of = [getattr(ds, key, None) for key in ("WindowCenter", "WindowWidth")]
    if any(v is None for v in values_of):
        return None
    center, width = (float(v[0]) if isinstance(v, MultiValue) else float(v) for v in values_of)
    if width < 1:
        return None
    return np.clip((values - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5, 0.0, 1.0)


def _set_transfer_syntax(ds: Any) -> None:
    """A bare data set (no preamble, no file meta) gets the transfer syntax it was read with."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
        ds.file_meta = meta


def _read_dicom(path: Path) -> np.ndarray:
    """DICOM pixels as float64 in [0, 1] (MONOCHROME2 sense: high = bright), ``(H, W)``."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path, force=True)
    photometric = str(getattr(ds, "PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise CorruptFileError(
            f"{path}: DICOM PhotometricInterpretation {photometric or '(missing)'!r} is not supported; "
            "expected MONOCHROME1 or MONOCHROME2"
        )
    if "PixelData" not in ds:
        raise CorruptFileError(f"{path}: DICOM file without pixel data")
    _set_transfer_syntax(ds)
    pixels = np.asarray(ds.pixel_array)
    if pixels.ndim != 2:
        raise CorruptFileError(f"{path}: expected one 2-D DICOM frame, got pixel array shape {pixels.shape}")
    bits = int(getattr(ds, "BitsStored", 16))
    signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
    if "VOILUTSequence" in ds:
        lut_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        unit = np.asarray(apply_voi_lut(pixels, ds, index=0), dtype=np.float64) / (2**lut_bits - 1)
    else:
        windowed = _window(np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64), ds)
        low = -(2 ** (bits - 1)) if signed else 0
        unit = windowed if windowed is not None else (pixels.astype(np.float64) - low) / (2**bits - 1)
    unit = np.clip(unit, 0.0, 1.0)
    return 1.0 - unit if photometric == "MONOCHROME1" else unit


def _decode(path: Path) -> np.ndarray:
    """Decode ``path`` as float32 ``(1, H, W)`` in [-1024, 1024]."""
    header = _header(path)
    if not header:
        raise CorruptFileError(f"{path}: empty file (0 bytes)")
    if _is_dicom(path, header):
        return ((2.0 * _read_dicom(path) - 1.0) * 1024.0).astype(np.float32)[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = skimage.io.imread(path)
    img = _to_grey(np.asarray(img), path)
    maxval = _png_maxval(path, img) if header.startswith(_PNG_MAGIC) else None
    maxval = maxval or _MAXVAL.get(img.dtype)
    if maxval is None:
        raise CorruptFileError(
            f"{path}: unsupported pixel type {img.dtype}; expected 8-bit or 16-bit integers"
        )
    return to_xrv_range(img, maxval)[None].astype(np.float32)


def _to_grey(img: np.ndarray, path: Path) -> np.ndarray:
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[-1] == 2:  # grey + alpha
        return img[..., 0]
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = img[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0]
        grey = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
        return grey.round().astype(img.dtype)
    raise CorruptFileError(f"{path}: expected a 2-D grey or RGB image, got array shape {img.shape}")


def read_raw(path: str | Path) -> np.ndarray:
    """Read a radiograph file as float32 ``(1, H, W)`` in [-1024, 1024], not cropped or resized.

    Raises:
        DataUnavailableError: no such file.
        CorruptFileError: an empty, truncated or non-image file, or an unsupported pixel type;
            the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataUnavailableError(f"path: no image file at {path}")
    try:
        return _decode(path)
    except ChexpError:
        raise
    except Exception as err:  # decoders raise OSError, ValueError, SyntaxError, struct.error ...
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        raise CorruptFileError(f"cannot decode {path} as an image: {reason}") from None


def center_crop_resize(img: np.ndarray, size: int | None) -> np.ndarray:
    """Center crop ``(1, H, W)`` to a square and resize to ``size`` (torchxrayvision transforms)."""
    from ..models._xrv_import import xrv

    img = xrv.datasets.XRayCenterCrop()(img)
    if size is not None and img.shape[-1] != size:
        img = xrv.datasets.XRayResizer(size)(img)
    return np.clip(img, -1024.0, 1024.0).astype(np.float32)


def read_image(path: str | Path, size: int | None = 224) -> np.ndarray:
    """Read a PNG, JPEG or DICOM radiograph as float32 ``(1, size, size)`` in [-1024, 1024].

    Args:
        path: image file.
        size: output side after the center crop; ``None`` keeps the cropped size.

    Raises:
        DataUnavailableError: no such file (a ``FileNotFoundError``).
        CorruptFileError: the file cannot be decoded, or has an unsupported pixel type.

    Warns:
        ImageQualityWarning: the image's shorter side is below ``size`` (upsampled), the image is
            constant, or a 16-bit PNG is read as 12-bit.
    """
    raw = read_raw(path)
    side = min(raw.shape[-2:])
    if size is not None and side < size:
        warnings.warn(
            f"{path}: image is {raw.shape[-1]}x{raw.shape[-2]}, smaller than the model's {size}x{size} input; "
            f"it is upsampled {size / side:.3g}x", ImageQualityWarning, stacklevel=2,
        )
    if raw.size and float(raw.max()) == float(raw.min()):
        warnings.warn(f"{path}: constant image (every pixel {float(raw.flat[0]):g}): nothing to explain",
                      ImageQualityWarning, stacklevel=2)
    return center_crop_resize(raw, size)


def crop_resize_mask(mask: np.ndarray, size: int | None) -> np.ndarray:
    """Apply the image's center crop and resize to a 2-D mask (``(H, W)`` -> bool ``(size, size)``).

    Nearest-neighbour interpolation, so a mask stays binary and aligned with the image read
    by :func:`read_image` from a file of the same ``(H, W)``.
    """
    from ..models._xrv_import import xrv

    m = np.asarray(mask)[None]
    m = xrv.datasets.XRayCenterCrop()(m)[0]
    if size is not None and m.shape[-1] != size:
        m = skimage.transform.resize(
            m.astype(np.float32), (size, size), order=0, mode="constant", anti_aliasing=False
        )
    return m > 0.5


def box_to_mask(
    box: tuple[float, float, float, float], image_shape: tuple[int, int], size: int | None
) -> np.ndarray:
    """A filled box ``(x, y, width, height)`` in original pixel coordinates, as a mask aligned with
    :func:`read_image` (same center crop and resize). Returns bool ``(size, size)``."""
    h, w = image_shape
    x, y, bw, bh = box
    mask = np.zeros((h, w), dtype=bool)
    x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    x1, y1 = min(int(np.ceil(x + bw)), w), min(int(np.ceil(y + bh)), h)
    mask[y0:y1, x0:x1] = True
    return crop_resize_mask(mask, size)
