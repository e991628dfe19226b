"""Saving a notebook's figures and tables under its ``output_dir``, atomically, with download links.

Every file is written to a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a half-written figure or table behind.

Inside a notebook, :func:`save_figure` and :func:`save_table` also display a Markdown line of
links to the saved files ("Download: name.png · name.svg"), relative to the folder of the page
the notebook becomes: ``$CHEXP_PAGE_DIR`` (:data:`PAGE_DIR_ENV`; ``chexp reproduce`` sets it to
``<run>/notebooks``), else the working directory (a notebook opened in Jupyter). The output's
metadata lists the same relative paths under ``{"chexp": {"downloads": [...]}}``;
:func:`chexp.book.stage_book` copies those files into the staged book beside the page and moves
the line under the cell's figure or table, and Sphinx ships them with the HTML (a Markdown link
to a local file is a download link).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing chexp.outputs stays light (chexp.reproduce does)
    import pandas as pd
    from matplotlib.figure import Figure

#: Environment variable: the folder of the page an executing notebook becomes (download links are
#: relative to it); unset: the working directory.
PAGE_DIR_ENV = "CHEXP_PAGE_DIR"

#: Key of a download-link output's metadata (``{"chexp": {"downloads": [relative paths]}}``).
DOWNLOADS_KEY = "downloads"


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


def page_dir() -> Path:
    """The folder download links are relative to: ``$CHEXP_PAGE_DIR``, else the working directory."""
    return Path(os.environ.get(PAGE_DIR_ENV) or os.getcwd()).resolve()


def relative_links(paths: Sequence[Path], start: Path | None = None) -> list[str]:
    """POSIX paths of ``paths`` relative to ``start`` (default :func:`page_dir`), as Markdown links use."""
    base = page_dir() if start is None else Path(start).resolve()
    return [PurePosixPath(*Path(os.path.relpath(Path(p).resolve(), base)).parts).as_posix() for p in paths]


def download_markdown(links: Sequence[str]) -> str:
    """The Markdown line ``Download: [a.png](links[0]) · [a.svg](links[1])`` (link text: file names)."""
    return "Download: " + " · ".join(f"[{PurePosixPath(link).name}](<{link}>)" for link in links)


def show_download_links(paths: Sequence[Path]) -> None:
    """Display :func:`download_markdown` of ``paths`` in the running notebook (nothing outside one),
    with the relative links in the output's metadata (see the module docstring)."""
    from IPython import get_ipython

    if get_ipython() is None:
        return
    from IPython.display import Markdown, display

    links = relative_links(paths)
    display(Markdown(download_markdown(links)), metadata={"chexp": {DOWNLOADS_KEY: links}})


def save_figure(
    fig: Figure,
    output_dir: str | Path,
    name: str,
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 150,
    link: bool = True,
) -> list[Path]:
    """Save ``fig`` as ``output_dir/name.{png,svg}``; returns the paths.

    ``link``: in a notebook, display links to the files (:func:`show_download_links`).
    """
    out = Path(output_dir)
    paths = [
        write_atomic(out / f"{name}.{fmt}", lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=dpi, bbox_inches="tight"))
        for fmt in formats
    ]
    if link:
        show_download_links(paths)
    return paths


def save_table(table: pd.DataFrame, output_dir: str | Path, name: str, index: bool = False, link: bool = True) -> Path:
    """Save ``table`` as ``output_dir/name.csv``; returns the path.

    ``link``: in a notebook, display a link to the file (:func:`show_download_links`).
    """
    path = write_atomic(Path(output_dir) / f"{name}.csv", lambda p: table.to_csv(p, index=index))
    if link:
        show_download_links([path])
    return path
