"""Build the Jupyter Book from papermill-executed notebooks, fully offline.

Layout of a run folder ``<run>`` (``chexp reproduce --output-dir <run>``)::

    <run>/notebooks/<stem>.ipynb   executed notebooks (papermill)
    <run>/failed/<stem>.ipynb      notebooks whose execution failed, with the traceback
    <run>/outputs/<stem>/          files a notebook saves (its ``output_dir`` parameter)
    <run>/.book-src/               staged book source: _config.yml, _toc.yml, references.bib,
                                   book/, notebooks/ (the executed copies), outputs/ (the
                                   files their download links name), widget JavaScript,
                                   book/scorecard.md (generated: "Scorecard"),
                                   book/seeds.md (+ the seeds sweep's results: chexp.seeds),
                                   book/provenance.md (generated: "Build provenance")
    <run>/.book-build/             Sphinx doctrees and the HTML being built
    <run>/html/                    the finished book (replaced only when a build ends)

A book of several profiles (``chexp reproduce --profile phantom --profile cohen``, ``make
book-real``) is built from a run folder holding one such folder per profile, ``<run>/<profile>/``
(:func:`profile_run_dirs`), and its ``.book-src``, ``.book-build`` and ``html`` at the top. The
first profile's chapters are the book's; every other profile's executed chapters form a part of
their own after the chapters (:func:`stage_profile_part`), under ``<profile>/notebooks/`` of the
staged tree, and each chapter page links to its version under the other profile or says why there
is none.

The ipywidgets JavaScript (npm ``@jupyter-widgets/html-manager``, ``dist/embed.js`` and
the icon fonts beside it) is fetched with ``npm pack`` into a cache folder, checked
against the sha256 recorded in :data:`WIDGET_JS`, and unpacked into the staged
``book/assets/ipywidgets/``; ``_config.yml`` points myst-nb's ``nb_ipywidgets_js`` at it.
MathJax (:data:`MATHJAX`, npm ``mathjax``) is installed the same way into ``book/assets/mathjax/``
and ``_config.yml``'s ``mathjax_path`` points at it, so the book's math renders with no network.

Command line: ``python -m chexp.book fetch-js [--dest DIR]`` and
``python -m chexp.book build --run-dir DIR``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import pooch

from chexp.errors import ChecksumError, DataUnavailableError, InvalidParameterError
from chexp.outputs import DOWNLOADS_KEY
from chexp.paths import SOURCE_ROOT
from chexp.scorecard import SCORECARD_PAGE, notebook_run, scorecard_page
from chexp.seeds import SEEDS_PAGE, stage_seeds_page

__all__ = [
    "REPO_ROOT",
    "NpmAsset",
    "WIDGET_JS",
    "npm_cache_dir",
    "fetch_npm_tarball",
    "MATHJAX",
    "install_npm_asset",
    "install_widget_js",
    "toc_notebooks",
    "stage_notebook",
    "stage_book",
    "PART_CAPTIONS",
    "profile_run_dirs",
    "stage_profile_part",
    "unexecuted_notebooks",
    "provenance_page",
    "build_book",
    "BuildResult",
    "main",
]

#: Repository root: the folder holding ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/``.
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Book source files copied into the staged tree (relative to the repository root).
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")
BOOK_DIRS = ("book",)

#: Where, inside the staged tree, the widget JavaScript goes (an ``html_static_path``
#: entry of ``_config.yml`` is ``book/assets``; the file is served as
#: ``_static/ipywidgets/embed.js``).
WIDGET_JS_SUBDIR = Path("book") / "assets" / "ipywidgets"

#: The generated "Build provenance" page: its ``_toc.yml`` entry in the staged tree (the file is
#: ``<entry>.md``), listed last.
PROVENANCE_PAGE = "book/provenance"


@dataclass(frozen=True)
class NpmAsset:
    """A pinned npm package whose tarball is verified by sha256 before use.

    Attributes:
        package: npm package name.
        version: exact version.
        sha256: hex sha256 of the tarball that ``npm pack`` returns (registry tarballs
            are immutable, so this pins the bytes).
        keep: glob patterns (``fnmatch``) of the files kept, relative to ``root``; a pattern
            matches only names with as many ``/`` as itself (``*.woff`` keeps no sub-folder).
        root: folder of the tarball the files are taken from; they keep their paths below it.
    """

    package: str
    version: str
    sha256: str
    keep: tuple[str, ...]
    root: str = "package/dist/"

    def kept(self, member: str) -> str | None:
        """The path below :attr:`root` of tarball member ``member`` if it is kept, else ``None``."""
        if not member.startswith(self.root):
            return None
        name = member[len(self.root):]
        depth = name.count("/")
        keep = any(fnmatch.fnmatchcase(name, pattern) and depth == pattern.count("/") for pattern in self.keep)
        return name if keep else None

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def tarball_name(self) -> str:
        # npm pack names a scoped package "@scope/name" as "scope-name-<version>.tgz".
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"


#: The widget manager for ipywidgets 8 (html-manager 1.0.x): ``embed.js`` needs no
#: require.js and loads its Font Awesome 4 fonts from its own folder.
WIDGET_JS = NpmAsset(
    package="@jupyter-widgets/html-manager",
    version="1.0.15",
    sha256="2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638",
    keep=(
        "embed.js",
        "embed.js.LICENSE.txt",
        "*.woff2",
        "*.woff",
        "*.ttf",
        "*.eot",
        "*.svg",
    ),
)

#: MathJax 3 (Apache-2.0), served from the book itself instead of Sphinx's CDN default: the
#: combined TeX input + CommonHTML output component (all TeX extensions built in, so nothing is
#: loaded on demand) and the woff fonts it loads from ``output/chtml/fonts/woff-v2`` beside itself.
MATHJAX = NpmAsset(
    package="mathjax",
    version="3.2.2",
    sha256="1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
    keep=("LICENSE", "es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2/*.woff"),
    root="package/",
)

#: Where, inside the staged tree, MathJax goes (``_config.yml``'s ``mathjax_path`` is
#: ``mathjax/es5/tex-chtml-full.js``, relative to the output's ``_static/``).
MATHJAX_SUBDIR = Path("book") / "assets" / "mathjax"


def npm_cache_dir() -> Path:
    """Cache folder for npm tarballs: ``$CHEXP_NPM_CACHE``, else ``<chexp cache>/npm``
    (``$CHEXP_CACHE_DIR``, by default ``~/.cache/chexp``; see :mod:`chexp.paths`)."""
    env = os.environ.get("CHEXP_NPM_CACHE")
    if env:
        return Path(env).expanduser()
    from chexp.paths import cache_dir

    return cache_dir() / "npm"


def fetch_npm_tarball(asset: NpmAsset, cache: Path | None = None) -> Path:
    """Return the verified tarball of ``asset``, running ``npm pack`` if it is not cached.

    Raises:
        DataUnavailableError: npm is not installed or ``npm pack`` failed (offline, no
            registry).
        ChecksumError: the tarball's sha256 differs from ``asset.sha256`` (the cached
            file is left in place for inspection but not used).
    """
    cache = npm_cache_dir() if cache is None else Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / asset.tarball_name
    if not target.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise DataUnavailableError(
                f"npm is needed once to fetch {asset.spec} (the book's widget JavaScript) "
                f"into {cache}; install Node.js/npm (Debian: apt-get install -y npm) "
                "or copy the tarball there"
            )
        with tempfile.TemporaryDirectory(dir=cache, prefix=".npm-pack-") as tmp:
            proc = subprocess.run(
                [npm, "pack", asset.spec, "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
                check=False,
            )
            packed = Path(tmp) / asset.tarball_name
            if proc.returncode != 0 or not packed.is_file():
                raise DataUnavailableError(
                    f"`npm pack {asset.spec}` failed (exit {proc.returncode}): "
                    f"{(proc.stderr or proc.stdout).strip()[-800:]}"
                )
            os.replace(packed, target)
    actual = pooch.file_hash(target, alg="sha256")
    if actual != asset.sha256:
        raise ChecksumError(
            f"{target} has sha256 {actual}, expected {asset.sha256} for {asset.spec}; "
            "delete the file to fetch it again"
        )
    return target


def install_npm_asset(asset: NpmAsset, dest: Path, cache: Path | None = None) -> list[Path]:
    """Unpack the files ``asset`` keeps from its verified tarball into ``dest`` (paths below
    ``asset.root`` kept).

    Returns:
        The files written, sorted.
    """
    tarball = fetch_npm_tarball(asset, cache)
    dest = Path(dest)
    written: list[Path] = []
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            name = asset.kept(member.name) if member.isfile() else None
            if name is None:
                continue
            source = archive.extractfile(member)
            assert source is not None  # a regular file member
            out = dest / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(source.read())
            written.append(out)
    return sorted(written)


def install_widget_js(dest: Path, asset: NpmAsset = WIDGET_JS, cache: Path | None = None) -> list[Path]:
    """Unpack ``embed.js`` and its fonts from the verified tarball into ``dest``.

    Returns:
        The files written, sorted.
    """
    written = install_npm_asset(asset, dest, cache)
    if not (Path(dest) / "embed.js").is_file():
        raise DataUnavailableError(f"{asset.spec} has no package/dist/embed.js")
    return written


def toc_notebooks(toc_path: Path) -> list[str]:
    """Stems of the ``notebooks/<stem>`` entries of a Jupyter Book ``_toc.yml``, in order."""
    import yaml

    data = yaml.safe_load(Path(toc_path).read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root") and isinstance(value, str):
                    parts = Path(value).with_suffix("").parts
                    if len(parts) == 2 and parts[0] == "notebooks":
                        found.append(parts[1])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


def _executed_notebook(run_dir: Path, stem: str) -> Path | None:
    """The executed notebook ``stem`` of ``run_dir``: from ``notebooks/``, else ``failed/``, else ``None``."""
    for folder in ("notebooks", "failed"):
        candidate = Path(run_dir) / folder / f"{stem}.ipynb"
        if candidate.is_file():
            return candidate
    return None


def unexecuted_notebooks(run_dir: Path, source_root: Path = SOURCE_ROOT) -> list[str]:
    """Stems of the toc's notebooks that ``run_dir`` holds no executed copy of (the book needs them all)."""
    return [stem for stem in toc_notebooks(Path(source_root) / "_toc.yml") if _executed_notebook(run_dir, stem) is None]


def _downloads(output: dict) -> list[str]:
    """The relative paths of a download-link output (:func:`chexp.outputs.show_download_links`)."""
    return list(output.get("metadata", {}).get("chexp", {}).get(DOWNLOADS_KEY, []))


def stage_notebook(notebook: Path, dest_dir: Path, page_dir: Path, stage: Path) -> Path:
    """Copy an executed notebook into ``dest_dir``, with the files its download links name.

    In each code cell, the download-link outputs of :func:`chexp.outputs.save_figure` and
    :func:`~chexp.outputs.save_table` are moved after the cell's other outputs (under the figure
    the inline backend shows at the end of the cell, and under the table the cell returns). Each
    linked file, relative to ``page_dir`` (the folder the notebook ran for, ``<run>/notebooks``), is
    copied to the same place relative to ``dest_dir`` inside ``stage``, where Sphinx finds it and
    ships it with the HTML (``_downloads/``). A link whose file is missing, or that leaves
    ``stage``, keeps no file: the build then warns about it.

    Returns:
        The staged notebook.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    stage = Path(stage).resolve()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        links = [output for output in cell.outputs if _downloads(output)]
        cell.outputs = [output for output in cell.outputs if not _downloads(output)] + links
        for link in (path for output in links for path in _downloads(output)):
            source = Path(page_dir) / link
            target = Path(os.path.normpath(Path(dest_dir).resolve() / link))
            if source.is_file() and target.is_relative_to(stage):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    dest = Path(dest_dir) / Path(notebook).name
    nbformat.write(nb, dest)
    return dest


def stage_book(
    run_dir: Path,
    source_root: Path = SOURCE_ROOT,
    cache: Path | None = None,
    *,
    profiles: Sequence[str] = (),
) -> Path:
    """Assemble the book source under ``<run_dir>/.book-src`` and return that folder.

    Copies ``_config.yml``, ``_toc.yml``, ``references.bib`` and ``book/`` from ``source_root``,
    the executed notebooks named in the toc from ``<run_dir>/notebooks/`` (or, for a
    notebook whose execution failed, ``<run_dir>/failed/``, so that the page shows the
    error) with the files their download links name (:func:`stage_notebook`), writes the
    "Scorecard" page (:func:`chexp.scorecard.scorecard_page`) and the "Build provenance" page
    (:func:`provenance_page`), listed last in the staged ``_toc.yml`` in that order, and
    installs the widget JavaScript and MathJax.

    Args:
        profiles: empty for a run folder of one profile (the layout above); else the profiles of a
            multi-profile run folder (:func:`profile_run_dirs`), the first giving the book's
            chapters and each other one a part of its own (:func:`stage_profile_part`); the
            scorecard then has a column per profile.

    Raises:
        DataUnavailableError: a toc notebook was never executed into ``run_dir`` (into the first
            profile's folder for a multi-profile run).
    """
    run_dir = Path(run_dir)
    source_root = Path(source_root)
    runs = profile_run_dirs(run_dir, profiles) if profiles else {"": run_dir}
    main_run = next(iter(runs.values()))
    stage = run_dir / ".book-src"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in BOOK_FILES:
        shutil.copy2(source_root / name, stage / name)
    for name in BOOK_DIRS:
        shutil.copytree(source_root / name, stage / name,
                        ignore=shutil.ignore_patterns("ipywidgets", "mathjax", "__pycache__"))
    if (stage / f"{SEEDS_PAGE}.md").is_file():  # the "Across seeds" chapter: the seeds sweep's results
        stage_seeds_page(stage / f"{SEEDS_PAGE}.md", run_dir)
    (stage / "notebooks").mkdir()
    missing = unexecuted_notebooks(main_run, source_root)
    for stem in toc_notebooks(source_root / "_toc.yml"):
        candidate = _executed_notebook(main_run, stem)
        if candidate is not None:
            stage_notebook(candidate, stage / "notebooks", main_run / "notebooks", stage)
    if missing:
        raise DataUnavailableError(
            f"the book lists notebooks never executed into {main_run / 'notebooks'}: "
            f"{', '.join(missing)}; run `chexp reproduce --output-dir {run_dir}` "
            "(without --only) first"
        )
    notebooks = [stage / "notebooks" / f"{stem}.ipynb" for stem in toc_notebooks(source_root / "_toc.yml")]
    further = [stage / profile / "notebooks" / f"{stem}.ipynb" for profile in profiles[1:]
               for stem in stage_profile_part(stage, runs[profile], profile, profiles[0], [p.stem for p in notebooks])]
    scorecard_runs = runs if profiles else main_run
    (stage / f"{SCORECARD_PAGE}.md").write_text(scorecard_page(scorecard_runs, [p.stem for p in notebooks]),
                                                encoding="utf-8")
    _append_to_toc(stage / "_toc.yml", SCORECARD_PAGE)
    (stage / f"{PROVENANCE_PAGE}.md").write_text(provenance_page(notebooks + further), encoding="utf-8")
    _append_to_toc(stage / "_toc.yml", PROVENANCE_PAGE)
    install_widget_js(stage / WIDGET_JS_SUBDIR, cache=cache)
    install_npm_asset(MATHJAX, stage / MATHJAX_SUBDIR, cache=cache)
    return stage


# ----------------------------------------------------------------------------- several profiles

#: Caption of the part that holds a further profile's chapters; other profiles get
#: ``"Under the <profile> profile"``.
PART_CAPTIONS = {
    "phantom": "On phantoms",
    "cohen": "On real radiographs (Cohen/BrixIA)",
    "paper": "On the papers' data",
}


def profile_run_dirs(run_dir: Path, profiles: Sequence[str]) -> dict[str, Path]:
    """``{profile: <run_dir>/<profile>}``: the single-profile run folder of each profile of a
    multi-profile run folder, in the order given.

    Raises:
        InvalidParameterError: no profile, or one named twice.
    """
    if not profiles or len(set(profiles)) != len(profiles):
        raise InvalidParameterError(f"profiles: give one or more distinct profiles, got {list(profiles)}")
    return {profile: Path(run_dir) / profile for profile in profiles}


def _part_page(profile: str) -> str:
    """The ``_toc.yml`` entry of a further profile's part page (the file is ``<entry>.md``)."""
    return f"{profile}/index"


def _profile_page(profile: str, stem: str) -> str:
    """The docname of chapter ``stem`` under a further ``profile`` in the staged tree."""
    return f"{profile}/notebooks/{stem}"


def _insert_note(notebook: Path, note: str, title_suffix: str = "") -> None:
    """Put the Markdown ``note`` right under the page's title (the first ``# `` line of a markdown
    cell) of ``notebook``, in place, and append ``title_suffix`` to that title; a notebook with no
    title gets ``note`` as a first markdown cell."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    nb = nbformat.read(notebook, as_version=4)
    for cell in (cell for cell in nb.cells if cell.cell_type == "markdown"):
        lines = cell.source.split("\n")
        at = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
        if at is not None:
            rest = "\n".join(lines[at + 1:]).lstrip("\n")
            cell.source = "\n".join([*lines[:at], lines[at] + title_suffix, "", note, "", rest]).rstrip("\n")
            break
    else:
        nb.cells.insert(0, new_markdown_cell(note))
    nbformat.write(nb, notebook)


def _page_title(notebook: Path) -> str | None:
    """The title of a notebook page: the text of the first ``# `` line of its markdown cells (``None``: no title)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    for cell in (cell for cell in cells if cell.get("cell_type") == "markdown"):
        source = cell.get("source", "")
        lines = ("".join(source) if isinstance(source, list) else source).split("\n")
        title = next((line[2:].strip() for line in lines if line.startswith("# ")), None)
        if title:
            return title
    return None


def _role_text(title: str) -> str:
    """``title`` as the text of a MyST role (``{doc}`text <target>```): without the backticks and angle
    brackets that would end it."""
    return re.sub(r"[`<>]", "", title).strip()


#: A MyST ``{doc}`` role: ``{doc}`target``` or ``{doc}`title <target>```.
_DOC_ROLE = re.compile(r"\{doc\}`(?P<title>[^`<]*?)(?:\s*<(?P<target>[^`>]+)>)?`")


def _retarget_doc_links(notebook: Path, profile: str, staged: Collection[str]) -> None:
    """Point the relative ``{doc}`` links of a chapter copied to ``<profile>/notebooks/`` (in its
    markdown cells and Markdown outputs) where they pointed from ``notebooks/``: at this part's
    copy of a chapter in ``staged``, else at the book's page (absolute docnames), in place."""
    import nbformat

    def target(match: re.Match[str]) -> str:
        relative = match["target"] or match["title"]
        if relative.startswith("/"):
            return match[0]
        docname = posixpath.normpath(posixpath.join("notebooks", relative))
        folder, _, stem = docname.rpartition("/")
        if folder == "notebooks" and stem in staged:
            docname = _profile_page(profile, stem)
        return f"{{doc}}`{match['title']} </{docname}>`" if match["target"] else f"{{doc}}`/{docname}`"

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _DOC_ROLE.sub(target, cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if isinstance(data.get("text/markdown"), str):
                data["text/markdown"] = _DOC_ROLE.sub(target, data["text/markdown"])
    nbformat.write(nb, notebook)


def _duration(notebook: Path) -> float | None:
    """Papermill's run time of an executed notebook in seconds (``None`` when not recorded)."""
    seconds = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {}).get("papermill", {}).get("duration")
    return None if seconds is None else float(seconds)


def stage_profile_part(stage: Path, profile_run: Path, profile: str, main_profile: str,
                       stems: Sequence[str]) -> list[str]:
    """Stage the chapters that ran under a further ``profile`` as a part of the book.

    Each chapter of ``stems`` (toc order) that ``profile_run`` executed under ``profile`` (or that
    failed there: its page shows the error) is staged as ``<stage>/<profile>/notebooks/<stem>.ipynb``
    with the files its download links name, its title marked with the profile and a note linking
    the book's own version (run under ``main_profile``); the book's page of every chapter gets a
    note linking this version or saying why there is none (the notebook does not support the
    profile, its data were unavailable, it was not run). A part captioned
    ``PART_CAPTIONS[profile]`` is inserted into ``<stage>/_toc.yml`` before its last part, opened
    by a generated page (``<profile>/index.md``) that lists each chapter (its title, linking its page
    here, and its notebook) with its run time or why it is missing.

    Returns:
        The stems staged into the part, in order.
    """
    stage = Path(stage)
    dest = stage / profile / "notebooks"
    dest.mkdir(parents=True, exist_ok=True)
    sources: dict[str, tuple[Path | None, str]] = {}
    for stem in stems:
        ran, why = notebook_run(profile_run, stem, profile, source=stage / "notebooks" / f"{stem}.ipynb")
        failed = profile_run / "failed" / f"{stem}.ipynb"
        sources[stem] = (profile_run / "notebooks" / f"{stem}.ipynb" if ran else failed if failed.is_file() else None,
                         why)
    staged = [stem for stem, (source, _) in sources.items() if source is not None]
    rows: list[str] = []
    total = 0.0
    for stem, (source, why) in sources.items():
        failed = profile_run / "failed" / f"{stem}.ipynb"
        title = _page_title(stage / "notebooks" / f"{stem}.ipynb") or stem
        if source is None:
            note = f"There is no version of this chapter under the `{profile}` profile in this book: {why}."
            _insert_note(stage / "notebooks" / f"{stem}.ipynb", f"```{{note}}\n{note}\n```")
            rows.append(f"| {_cell(title)} | `{stem}` | - | {why} |")
            continue
        page = stage_notebook(source, dest, profile_run / "notebooks", stage)
        _retarget_doc_links(page, profile, staged)
        _insert_note(page, f"```{{note}}\nThis is the chapter run under the `{profile}` profile. The same "
                           f"notebook under the `{main_profile}` profile: {{doc}}`/notebooks/{stem}`.\n```",
                     title_suffix=f" ({profile})")
        _insert_note(stage / "notebooks" / f"{stem}.ipynb",
                     f"```{{tip}}\nThis chapter also ran under the `{profile}` profile: "
                     f"{{doc}}`/{_profile_page(profile, stem)}`.\n```")
        seconds = _duration(source)
        total += seconds or 0.0
        state = "failed (the page shows the error)" if source == failed else "ran"
        rows.append(f"| {{doc}}`{_role_text(title)} </{_profile_page(profile, stem)}>` | `{stem}` | "
                    f"{'-' if seconds is None else f'{seconds:.0f}'} | {state} |")
    caption = PART_CAPTIONS.get(profile, f"Under the {profile} profile")
    intro = [
        f"# {caption}",
        "",
        f"The chapters of this book, run again under the `{profile}` profile "
        f"(`chexp reproduce --profile {main_profile} --profile {profile}`; see {{doc}}`/book/intro`). "
        f"Each page is the notebook executed with `profile = \"{profile}\"`; the chapter pages of the "
        "book link to their version here, and this list says why a chapter has none.",
        "",
        "| chapter | notebook | seconds | state |",
        "|:--|:--|--:|:--|",
        *rows,
        "",
        f"Run time of these {len(staged)} chapters under `{profile}`: {total / 60:.1f} minutes "
        "(papermill's durations, on the machine in {doc}`/book/provenance`).",
    ]
    (stage / f"{_part_page(profile)}.md").write_text("\n".join(intro) + "\n", encoding="utf-8")
    _insert_part(stage / "_toc.yml", caption, [_part_page(profile)] + [_profile_page(profile, s) for s in staged])
    return staged


def _insert_part(toc_path: Path, caption: str, files: Sequence[str]) -> None:
    """Insert a part ``caption`` listing ``files`` before the last part of a ``_toc.yml``."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    parts = toc.setdefault("parts", [])
    part = {"caption": caption, "chapters": [{"file": file} for file in files]}
    parts.insert(max(len(parts) - 1, 0), part)
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")


def _cell(value: object) -> str:
    """A Markdown table cell: ``|`` escaped, empty as a dash."""
    text = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
    return text.replace("|", "\\|") or "-"


def provenance_page(notebooks: Sequence[Path]) -> str:
    """Markdown of the "Build provenance" page: :func:`chexp.provenance.provenance` of the
    machine that builds the book, and each executed notebook's papermill parameters
    (``profile``, ``device``) and run time.

    Args:
        notebooks: the executed notebooks, in book order.
    """
    from chexp.provenance import provenance

    info = provenance()
    info.pop("device")  # each notebook's device is in the second table
    lines = [
        "# Build provenance",
        "",
        "Computed when this book was built (`chexp.book.stage_book`): the versions and machine of "
        "the environment that built it, in which `chexp reproduce` ran the notebooks, and the git "
        "commit of the chexp source (`+dirty`: with uncommitted changes; `-`: not a git checkout, "
        "see the chexp version).",
        "",
        "| item | value |",
        "|:--|:--|",
        *(f"| {key} | {_cell(value)} |" for key, value in info.items()),
        "",
        "## Notebook runs",
        "",
        "| notebook | profile | device | seconds | finished (UTC) |",
        "|:--|:--|:--|--:|:--|",
    ]
    for path in notebooks:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("papermill", {})
        params = meta.get("parameters", {})
        seconds = meta.get("duration")
        cells = (path.stem, params.get("profile"), params.get("device"),
                 None if seconds is None else f"{seconds:.0f}", meta.get("end_time"))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _append_to_toc(toc_path: Path, entry: str) -> None:
    """Add ``{"file": entry}`` at the end of a Jupyter Book ``_toc.yml`` (its last part)."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    parts = toc.get("parts")
    chapters = parts[-1].setdefault("chapters", []) if parts else toc.setdefault("chapters", [])
    chapters.append({"file": entry})
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")


@dataclass(frozen=True)
class BuildResult:
    """Outcome of :func:`build_book`.

    Attributes:
        returncode: exit status of ``jupyter-book build`` (0 = no warnings, no errors).
        html_dir: ``<run_dir>/html`` (only replaced when the build succeeded).
        log: combined stdout and stderr of the build.
        seconds: wall time of the build.
    """

    returncode: int
    html_dir: Path
    log: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _swap_into_place(new: Path, final: Path) -> None:
    """Replace folder ``final`` by ``new`` with renames (``final`` is never half-written)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def build_book(
    run_dir: Path,
    source_root: Path = SOURCE_ROOT,
    *,
    warnings_as_errors: bool = True,
    cache: Path | None = None,
    quiet: bool = True,
    profiles: Sequence[str] = (),
) -> BuildResult:
    """Stage and build the book of ``run_dir``; the HTML goes to ``<run_dir>/html``.

    ``profiles``: empty for a run folder of one profile, else those of a multi-profile run
    folder, the first giving the book's chapters (see :func:`stage_book`).

    Runs ``jupyter-book build <stage> --path-output <run_dir>/.book-build --all
    -W -n --keep-going`` (without ``-W -n`` when ``warnings_as_errors`` is false) in a
    subprocess of the current interpreter.
    """
    run_dir = Path(run_dir).resolve()
    stage = stage_book(run_dir, source_root, cache=cache, profiles=profiles)
    build_root = run_dir / ".book-build"
    command = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(stage),
        "--path-output",
        str(build_root),
        "--all",
        "--keep-going",
    ]
    if warnings_as_errors:
        command += ["-W", "-n"]
    if quiet:
        command += ["-q"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=run_dir)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    html_dir = run_dir / "html"
    built = build_root / "_build" / "html"
    if proc.returncode == 0 and (built / "index.html").is_file():
        _swap_into_place(built, html_dir)
    elif proc.returncode == 0:
        return BuildResult(1, html_dir, log + f"\nno index.html in {built}", seconds)
    return BuildResult(proc.returncode, html_dir, log, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chexp.book {fetch-js,build}``."""
    parser = argparse.ArgumentParser(prog="python -m chexp.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch-js", help="fetch and verify the ipywidgets JavaScript and MathJax (npm)")
    fetch.add_argument("--dest", type=Path, default=None, help="also unpack embed.js and fonts here")
    fetch.set_defaults(func=_cli_fetch)
    build = sub.add_parser("build", help="build <run-dir>/html from <run-dir>/notebooks")
    build.add_argument("--run-dir", type=Path, default=Path("_build"))
    build.add_argument("--allow-warnings", action="store_true", help="do not treat warnings as errors")
    build.add_argument("--profiles", type=_profile_list, default=(), metavar="A,B",
                       help="a multi-profile run folder: its profiles, comma-separated, the book's first "
                            "(<run-dir>/<profile>/ each; default: a run folder of one profile)")
    build.set_defaults(func=_cli_build)
    args = parser.parse_args(argv)
    return args.func(args)


def _profile_list(text: str) -> tuple[str, ...]:
    """``"phantom,cohen"`` -> ``("phantom", "cohen")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _cli_fetch(args: argparse.Namespace) -> int:
    for asset in (WIDGET_JS, MATHJAX):  # both cached, later builds need no network
        print(f"{fetch_npm_tarball(asset)} (sha256 ok)")
    if args.dest is not None:
        for path in install_widget_js(args.dest):
            print(path)
    return 0


def _cli_build(args: argparse.Namespace) -> int:
    result = build_book(args.run_dir, warnings_as_errors=not args.allow_warnings, quiet=False,
                        profiles=args.profiles)
    print(result.log)
    print(f"book build {'ok' if result.ok else 'FAILED'} in {result.seconds:.1f} s -> {result.html_dir}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
