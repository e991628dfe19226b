"""The files ``chexp explain`` reads: folders expanded, each file read or reported.

A folder stands for every visible regular file in it (sorted, not recursive), so that a file that
is not an image is reported rather than silently left out. :func:`load_input` reads one file
with :func:`chexp.data.images.read_image` and keeps the reader's warnings (a 12-bit PNG, an image
smaller than the model's input, a constant image) with the image.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.images import ImageQualityWarning, read_image
from ..errors import DataUnavailableError

__all__ = ["LoadedImage", "collect_inputs", "load_input"]


@dataclass
class LoadedImage:
    """One input file, read.

    Attributes:
        path: the file.
        image: float32 ``(1, S, S)`` in [-1024, 1024].
        warnings: what the reader warned about, one line each.
    """

    path: Path
    image: np.ndarray
    warnings: list[str] = field(default_factory=list)


def collect_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], bool]:
    """The files to explain, in order, and whether a folder was given.

    Raises:
        DataUnavailableError: a path that does not exist, or a folder without files.
    """
    files: list[Path] = []
    folder = False
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            folder = True
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not found:
                raise DataUnavailableError(f"{path}: folder without files to explain")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataUnavailableError(f"{path}: no such file or folder")
    return files, folder


def load_input(path: Path, size: int) -> LoadedImage:
    """Read ``path`` at ``size`` x ``size``, keeping the reader's :class:`ImageQualityWarning` s.

    Raises:
        CorruptFileError: an empty, truncated or non-image file (the message names it).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageQualityWarning)
        image = read_image(path, size=size)
    notes = [str(w.message) for w in caught if issubclass(w.category, ImageQualityWarning)]
    for note in notes:
        warnings.warn(note, ImageQualityWarning, stacklevel=2)
    return LoadedImage(path, image, notes)
