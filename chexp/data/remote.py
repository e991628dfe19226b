"""Remote files pinned by URL and sha256, fetched with pooch into ``$CHEXP_DATA_DIR``.

Each :class:`RemoteSource` is a public repository at a fixed commit. A file of it lives at
``data_dir() / source.name / path`` locally and at ``source.base_url + path`` remotely. A file
already on disk is used only if its sha256 matches; a mismatch raises
:class:`~chexp.errors.ChecksumError` and the file is not used (chexp never overwrites a file it
did not download). A missing file is downloaded with a progress bar, checked, and moved into
place only when its checksum matches (pooch downloads to a temporary file first).

Pointing ``CHEXP_DATA_DIR`` at a folder that mirrors the sources (as ``../shared/data`` does
on the project's offline machines) makes every fetch local.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pooch

from ..errors import ChecksumError, DataUnavailableError, InvalidParameterError, UnknownNameError
from ..paths import data_dir


@dataclass(frozen=True)
class RemoteSource:
    """A public repository pinned to one commit.

    Attributes:
        name: folder name under ``data_dir()`` (the repository's name).
        base_url: raw-file URL prefix ending in ``/``; a file's URL is ``base_url + path``.
        license: the licence of the files, shown wherever the data is used.
    """

    name: str
    base_url: str
    license: str

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def local_path(self, path: str) -> Path:
        return data_dir() / self.name / path


SOURCES: dict[str, RemoteSource] = {
    s.name: s
    for s in (
        RemoteSource(
            "covid-chestxray-dataset",
            "https://raw.githubusercontent.com/ieee8023/covid-chestxray-dataset/"
            "584034aa7fbf06496741f11008d72fd791c8e443/",
            "per image (metadata.csv column 'license'); treat as research-only, non-commercial",
        ),
        RemoteSource(
            "Brixia-score-COVID-19",
            "https://raw.githubusercontent.com/BrixIA/Brixia-score-COVID-19/"
            "770036d297b3c52a6789f134bd9d8c8953d33ec1/",
            "CC BY-NC-SA 4.0",
        ),
        RemoteSource(
            "gifsplanation",
            "https://raw.githubusercontent.com/mlmed/gifsplanation/"
            "5a8f7f4e695f2ed000b90beb7bd54be39346cf41/",
            "see the gifsplanation repository",
        ),
    )
}


def get_source(source: str | RemoteSource) -> RemoteSource:
    if isinstance(source, RemoteSource):
        return source
    try:
        return SOURCES[source]
    except KeyError:
        raise UnknownNameError(source, SOURCES, "data source") from None


def verify(path: Path, sha256: str) -> Path:
    """Return ``path`` if its sha256 is ``sha256``; raise :class:`ChecksumError` otherwise."""
    actual = pooch.file_hash(path, alg="sha256")
    if actual != sha256.lower():
        raise ChecksumError(
            f"checksum mismatch for {path}: expected sha256 {sha256}, got {actual}. The file was "
            "not used. It is corrupt, truncated or a different version: delete it and fetch again."
        )
    return path


def download(url: str, dest: Path, sha256: str, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` (checked against ``sha256``), leaving nothing behind on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=dest.name,
            path=dest.parent,
            progressbar=progress,
        )
    except ValueError as err:  # pooch's hash mismatch; it removes the temporary download
        if dest.exists():
            dest.unlink()
        raise ChecksumError(f"downloaded {url} but its checksum is wrong: {err}") from None
    except Exception as err:  # network errors of every flavour (requests, socket, HTTP status)
        if dest.exists():
            dest.unlink()
        raise DataUnavailableError(
            f"could not download {url} ({type(err).__name__}: {err}). Download it by hand and put "
            f"it at {dest} (or set CHEXP_DATA_DIR to a folder that has {dest.parent.name}/...)."
        ) from None
    return dest


def fetch(source: str | RemoteSource, path: str, sha256: str, progress: bool = True) -> Path:
    """Local path of ``path`` of ``source``, downloading it if missing; always checksum-verified.

    Args:
        source: a :data:`SOURCES` name or a :class:`RemoteSource`.
        path: the file's path inside the source repository, e.g. ``"images/foo.png"``.
        sha256: expected hex digest (from ``data_manifests/``).
        progress: show a download progress bar.

    Raises:
        ChecksumError: the local or downloaded file has another sha256 (it is not used).
        DataUnavailableError: the file is missing and cannot be downloaded; the message names
            the URL and the exact local path to put it at.
    """
    src = get_source(source)
    if not sha256:
        raise InvalidParameterError(
            f"sha256 must be the hex digest of {src.name}/{path}, got {sha256!r}: chexp loads only checked files"
        )
    local = src.local_path(path)
    if local.is_file():
        return verify(local, sha256)
    return download(src.url(path), local, sha256, progress=progress)
