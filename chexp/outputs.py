"""Saving a notebook's figures and tables under its ``output_dir``, atomically.

Every file is written to a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a half-written figure or table behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path``, then rename it to ``path``:
    ``path`` is either the finished file or untouched (the temporary file is removed on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_figure(
    fig: Figure, output_dir: str | Path, name: str, formats: Sequence[str] = ("png", "svg"), dpi: int = 150
) -> list[Path]:
    """Save ``fig`` as ``output_dir/name.{png,svg}``; returns the paths."""
    out = Path(output_dir)
    return [
        write_atomic(out / f"{name}.{fmt}", lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=dpi, bbox_inches="tight"))
        for fmt in formats
    ]


def save_table(table: pd.DataFrame, output_dir: str | Path, name: str, index: bool = False) -> Path:
    """Save ``table`` as ``output_dir/name.csv``; returns the path."""
    return write_atomic(Path(output_dir) / f"{name}.csv", lambda p: table.to_csv(p, index=index))
