"""Reading radiographs into the torchxrayvision convention.

One channel, float32, values in [-1024, 1024] (``(2 * img / maxval - 1) * 1024``), center
cropped to a square on the long side and resized, using torchxrayvision's own transforms
(:class:`torchxrayvision.datasets.XRayCenterCrop`, :class:`~torchxrayvision.datasets.XRayResizer`),
so that images read here match what torchxrayvision models were trained on.

Supported: PNG and JPEG (8-bit and 16-bit; grey, RGB or RGBA) and DICOM (MONOCHROME1 and 2,
``BitsStored`` honoured, via :func:`torchxrayvision.utils.read_xray_dcm`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import skimage.io
import skimage.transform
import torchxrayvision as xrv

from ..errors import CorruptFileError, DataUnavailableError, InputRangeError

_MAXVAL = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


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
    return xrv.utils.normalize(img, maxval)


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        header = handle.read(132)
    return len(header) >= 132 and header[128:132] == b"DICM"


def _to_grey(img: np.ndarray, path: Path) -> np.ndarray:
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = img[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0]
        grey = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
        return grey.round().astype(img.dtype)
    raise CorruptFileError(f"{path}: expected a 2-D grey or RGB image, got array shape {img.shape}")


def read_raw(path: str | Path) -> np.ndarray:
    """Read a radiograph file as float32 ``(1, H, W)`` in [-1024, 1024], not cropped or resized."""
    path = Path(path)
    if not path.is_file():
        raise DataUnavailableError(f"path: no image file at {path}")
    try:
        if _is_dicom(path):
            return np.asarray(xrv.utils.read_xray_dcm(path), dtype=np.float32)[None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = skimage.io.imread(path)
    except (OSError, ValueError, SyntaxError, AttributeError, KeyError) as err:
        raise CorruptFileError(f"cannot decode {path} as an image: {err}") from None
    img = _to_grey(np.asarray(img), path)
    maxval = _MAXVAL.get(img.dtype)
    if maxval is None:
        raise CorruptFileError(
            f"{path}: unsupported pixel type {img.dtype}; expected 8-bit or 16-bit integers"
        )
    return to_xrv_range(img, maxval)[None].astype(np.float32)


def center_crop_resize(img: np.ndarray, size: int | None) -> np.ndarray:
    """Center crop ``(1, H, W)`` to a square and resize to ``size`` (torchxrayvision transforms)."""
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
    """
    return center_crop_resize(read_raw(path), size)


def crop_resize_mask(mask: np.ndarray, size: int | None) -> np.ndarray:
    """Apply the image's center crop and resize to a 2-D mask (``(H, W)`` -> bool ``(size, size)``).

    Nearest-neighbour interpolation, so a mask stays binary and aligned with the image read
    by :func:`read_image` from a file of the same ``(H, W)``.
    """
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
