"""``chexp reproduce``: run every experiment notebook with papermill, then build the book.

Each notebook of ``notebooks/`` (sorted by name; the repository's, or the copy a wheel installs:
:data:`chexp.paths.SOURCE_ROOT`) is executed with the parameters
``profile``, ``device``, ``output_dir`` (``<run>/outputs/<stem>``) and any ``-p key=value``
given, into a run folder (``--output-dir``, default ``_build``; layout in
:mod:`chexp.book`):

- papermill writes to a hidden temporary file beside the destination; only a finished,
  post-processed notebook is renamed to ``<run>/notebooks/<stem>.ipynb``;
- a notebook that fails is renamed to ``<run>/failed/<stem>.ipynb`` (with its traceback),
  any older result of it is removed from ``<run>/notebooks/``, and the run goes on;
- every notebook lists the profiles it supports in its metadata (``{"chexp": {"profiles":
  ["phantom", "cohen"]}}``, names of :data:`chexp.profiles.PROFILES`; a notebook without the
  entry supports all); one that does not list the run's profile is not run: its text (without
  code) is saved with a note saying so, and it counts as ok (skipped, not failed);
- a notebook that stops with chexp's :class:`~chexp.errors.DataUnavailableError` or
  :class:`~chexp.errors.WeightsUnavailableError` (a file it must download could not be fetched,
  for example offline) is likewise kept as its text with a note quoting the error, which names what
  to download, from where and where to put it; it counts as skipped, not failed (any other error
  fails the notebook);
- ``$CHEXP_PAGE_DIR`` is ``<run>/notebooks`` for the kernels, so that the download links that
  :func:`chexp.outputs.save_figure` and :func:`~chexp.outputs.save_table` display are relative
  to the pages;
- the ``parameters`` and ``injected-parameters`` cells are tagged ``remove-cell`` so that
  the book does not show them;
- the kernel is this very interpreter (``sys.executable``), through a private kernelspec
  written to a temporary folder on ``JUPYTER_PATH`` for the duration of the run, with
  the folder holding the ``chexp`` package put on the kernel's ``PYTHONPATH`` and
  ``TQDM_DISABLE=1`` in its environment (progress bars of models trained inside a notebook
  would otherwise end up in the book's pages; the run's own bar over notebooks stays). Nothing
  is installed into the user's Jupyter folders. ``kernel_name=`` picks a registered
  kernel instead.

Several runs with different parameters into different run folders can go on at the
same time: they share nothing but read-only sources.

``--scheduler SPEC`` (:mod:`chexp.cluster`: ``local``, ``local:N``, ``tcp://HOST:PORT``,
``slurm``) runs the notebooks as tasks of a Dask cluster, several at a time, through the executor
``chexp sweep`` uses (:func:`run_tasks`); without it they run here, one after the other, as before.
Each task starts its own kernel where it runs, so a worker needs the same environment as this
process (:mod:`chexp.cluster`).

``--jobs N`` runs N notebooks at a time on this machine (``make book`` uses 2), each in a kernel
of its own with torch's usual number of threads, so every number is the same as in a run one at
a time: a kernel's thread count decides how torch splits its sums, which the workers of a Dask
cluster (one thread each) change. The kernels wait passively at their thread barriers
(``OMP_WAIT_POLICY=PASSIVE`` unless set), not spinning, since they share the cores. Models that
several notebooks need are trained once: the model cache's file lock makes the others wait.

Several profiles (``--profile phantom --profile cohen``, or ``--profile phantom,cohen``;
:func:`reproduce_profiles`) run one after the other, each into ``<run>/<profile>/`` laid out as
above, and build ONE book in ``<run>/html``: the first profile's chapters, then a part per
further profile with the chapters that ran under it, each chapter page linking its other
version (:func:`chexp.book.stage_profile_part`), and a scorecard with a column per profile.

Exit status: 0 when every notebook ran or was skipped and the book (if built) had no warnings.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chexp.book import REPO_ROOT, BuildResult, build_book, profile_run_dirs, unexecuted_notebooks
from chexp.cli.options import DEVICE_PATTERN
from chexp.cluster import SPEC_FORMS, open_client, parse_scheduler
from chexp.errors import (
    DataUnavailableError,
    InvalidParameterError,
    MissingDependencyError,
    UnknownNameError,
    WeightsUnavailableError,
)
from chexp.outputs import PAGE_DIR_ENV
from chexp.paths import SOURCE_ROOT

__all__ = [
    "NotebookRun",
    "ReproduceResult",
    "parse_param",
    "find_notebooks",
    "this_python_kernel",
    "execute_notebook",
    "NotebookTask",
    "run_task",
    "run_tasks",
    "notebook_profiles",
    "skip_notebook",
    "unavailable_notebook",
    "UNAVAILABLE_ERRORS",
    "reproduce",
    "ProfilesResult",
    "profile_names",
    "reproduce_profiles",
    "add_subparser",
    "main",
]

#: Parameters that have their own option and may not be given with ``-p``.
RESERVED_PARAMS = {"profile": "--profile", "device": "--device", "output_dir": "--output-dir"}

REMOVE_TAG = "remove-cell"
HIDDEN_TAGS = ("parameters", "injected-parameters")

#: Names of the chexp errors that mean "a file could not be downloaded or found": a notebook that
#: stops with one is skipped with a page quoting the message, not failed (:func:`execute_notebook`).
UNAVAILABLE_ERRORS = frozenset({DataUnavailableError.__name__, WeightsUnavailableError.__name__})
KERNEL_NAME = "chexp-python"

#: Environment of the private kernel besides ``PYTHONPATH``: no tqdm bars in executed notebooks
#: (they would be saved into the book's pages).
KERNEL_ENV: dict[str, str] = {"TQDM_DISABLE": "1"}

_DESCRIPTION = (
    "Run every notebook of notebooks/ with papermill into a run folder, then build the "
    "Jupyter Book from the executed notebooks (warnings are errors)."
)
_DEVICE = DEVICE_PATTERN


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook.

    Attributes:
        name: notebook stem (``00_phantom_gallery``).
        ok: execution finished without an exception.
        path: the executed notebook (``<run>/notebooks/`` or ``<run>/failed/``), or
            ``None`` when nothing could be saved.
        error: one-line reason of a failure (``""`` when ok).
        seconds: wall time.
        skipped: not executed because the notebook does not support the run's profile (its
            metadata ``chexp.profiles``), or stopped because data or weights it downloads are
            unavailable (:data:`UNAVAILABLE_ERRORS`); ``path`` is then a page saying so and
            ``error`` the reason.
    """

    name: str
    ok: bool
    path: Path | None
    error: str
    seconds: float
    skipped: bool = False


@dataclass
class ReproduceResult:
    """Outcome of :func:`reproduce`."""

    run_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)
    build: BuildResult | None = None
    #: Why the book was not built although asked for (``--only`` left chapters unexecuted).
    build_skipped: str | None = None

    @property
    def failed(self) -> list[NotebookRun]:
        return [run for run in self.runs if not run.ok]

    @property
    def skipped(self) -> list[NotebookRun]:
        """Runs skipped for the profile or for unavailable data (counted as ok)."""
        return [run for run in self.runs if run.skipped]

    @property
    def exit_code(self) -> int:
        """0 if every notebook ran and the book (when built) built cleanly, else 1."""
        return 1 if self.failed or (self.build is not None and not self.build.ok) else 0

    def summary(self) -> str:
        lines = [f"run folder: {self.run_dir}"]
        for run in self.runs:
            status = "skipped: " + run.error if run.skipped else "ok" if run.ok else f"FAILED: {run.error}"
            lines.append(f"  {run.name:40s} {run.seconds:7.1f} s  {status}")
        if self.skipped:
            lines.append("skipped notebooks (their pages say why): " + ", ".join(run.name for run in self.skipped))
        if self.failed:
            lines.append("failed notebooks: " + ", ".join(run.name for run in self.failed))
        lines += _build_lines(self.build_skipped, self.build)
        return "\n".join(lines)


def _build_lines(build_skipped: str | None, build: BuildResult | None) -> list[str]:
    """The summary's lines about the book: why it was not built, or how its build went."""
    lines = [] if build_skipped is None else [f"book not built: {build_skipped}"]
    if build is not None:
        state = "ok" if build.ok else f"FAILED (exit {build.returncode})"
        lines.append(f"book build {state} in {build.seconds:.1f} s: {build.html_dir / 'index.html'}")
    return lines


def parse_param(text: str) -> tuple[str, Any]:
    """Parse ``key=value``; the value is a Python literal when it parses as one, else a string.

    >>> parse_param("n_samples=32")
    ('n_samples', 32)
    >>> parse_param("model=densenet121-res224-all")
    ('model', 'densenet121-res224-all')
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise InvalidParameterError(
            f"parameter {text!r} is not of the form name=value with a Python identifier name"
        )
    try:
        value: Any = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = raw
    return key, value


def find_notebooks(notebooks_dir: Path, only: str | Sequence[str] | None = None) -> list[Path]:
    """The ``*.ipynb`` files of ``notebooks_dir``, sorted; ``only`` keeps names matching it.

    ``only`` is a stem (``00_phantom_gallery``), a file name, or a glob (``0*``), or a
    list of those.

    Raises:
        DataUnavailableError: no such folder or no notebook in it (a ``FileNotFoundError``).
        UnknownNameError: ``only`` matches no notebook.
    """
    notebooks_dir = Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise DataUnavailableError(f"notebooks_dir: the notebook folder {notebooks_dir} does not exist")
    notebooks = sorted(
        path for path in notebooks_dir.glob("*.ipynb") if not path.name.startswith(".")
    )
    if not notebooks:
        raise DataUnavailableError(f"notebooks_dir: no .ipynb notebooks in {notebooks_dir}")
    if only is None:
        return notebooks
    patterns = [only] if isinstance(only, str) else list(only)
    selected = []
    for path in notebooks:
        if any(
            fnmatch.fnmatchcase(path.stem, pattern) or fnmatch.fnmatchcase(path.name, pattern)
            for pattern in patterns
        ):
            selected.append(path)
    if not selected:
        raise UnknownNameError(", ".join(patterns), [path.stem for path in notebooks], "notebook")
    return selected


@contextlib.contextmanager
def this_python_kernel(
    extra_pythonpath: Sequence[Path] = (REPO_ROOT,), env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """A Jupyter kernelspec for the running interpreter, valid inside the ``with`` block.

    Writes ``kernels/chexp-python/kernel.json`` (argv ``[sys.executable, "-m",
    "ipykernel_launcher", ...]``, ``PYTHONPATH`` = ``extra_pythonpath`` + the current
    ``PYTHONPATH``) into a temporary folder and puts that folder first on
    ``JUPYTER_PATH``; both are undone on exit. Yields the kernel name.

    Args:
        extra_pythonpath: folders put first on the kernel's ``PYTHONPATH``.
        env: further environment variables of the kernel only (default :data:`KERNEL_ENV`:
            ``TQDM_DISABLE=1``, no progress bars in executed notebooks); the running process's
            environment is not changed.

    Raises:
        MissingDependencyError: ipykernel is not installed in this interpreter (a
            ``ModuleNotFoundError``).
    """
    if importlib.util.find_spec("ipykernel") is None:
        raise MissingDependencyError(
            f"ipykernel is not installed for {sys.executable}; papermill needs it to run "
            "notebooks (pip install ipykernel)",
            name="ipykernel",
        )
    pythonpath = [str(Path(path).resolve()) for path in extra_pythonpath]
    if os.environ.get("PYTHONPATH"):
        pythonpath.append(os.environ["PYTHONPATH"])
    with tempfile.TemporaryDirectory(prefix="chexp-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"chexp ({Path(sys.executable).name})",
            "language": "python",
            "env": {**(KERNEL_ENV if env is None else env), "PYTHONPATH": os.pathsep.join(pythonpath)},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = tmp + (os.pathsep + previous if previous else "")
        try:
            yield KERNEL_NAME
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """Set environment variable ``name`` (inherited by the kernels started) inside the block only."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _check_kernel(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
    except NoSuchKernel:
        raise UnknownNameError(name, manager.find_kernel_specs(), "Jupyter kernel") from None


def _finalize(path: Path, source_kernelspec: Mapping[str, Any] | None) -> None:
    """Tag parameter cells ``remove-cell`` and restore the source's kernelspec metadata."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = list(cell.metadata.get("tags", []))
        if any(tag in tags for tag in HIDDEN_TAGS) and REMOVE_TAG not in tags:
            tags.append(REMOVE_TAG)
            cell.metadata["tags"] = tags
    if source_kernelspec:
        notebook.metadata["kernelspec"] = dict(source_kernelspec)
    nbformat.write(notebook, path)


def _one_line(error: BaseException) -> str:
    ename = getattr(error, "ename", type(error).__name__)
    evalue = str(getattr(error, "evalue", error)).strip().splitlines()
    return f"{ename}: {evalue[-1] if evalue else ''}"


def _unavailable(error: BaseException) -> str | None:
    """The message of a notebook's :data:`UNAVAILABLE_ERRORS` exception (papermill reports the
    kernel's exception by class name), ``None`` for any other error."""
    if getattr(error, "ename", None) not in UNAVAILABLE_ERRORS:
        return None
    return " ".join(str(getattr(error, "evalue", "")).split())


def execute_notebook(
    source: Path,
    run_dir: Path,
    parameters: Mapping[str, Any],
    kernel_name: str,
    *,
    execution_timeout: float | None = None,
) -> NotebookRun:
    """Execute one notebook into ``run_dir`` (see the module docstring for where it goes).

    Never raises for a failure inside the notebook: it is reported in the result. A notebook that
    stops with one of :data:`UNAVAILABLE_ERRORS` is not a failure: it is saved as its text with a
    note quoting the error (:func:`unavailable_notebook`) and reported as skipped.
    """
    import nbformat
    import papermill

    source = Path(source)
    good_dir = run_dir / "notebooks"
    failed_dir = run_dir / "failed"
    good_dir.mkdir(parents=True, exist_ok=True)
    final = good_dir / source.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{source.stem}.partial-", suffix=".ipynb", dir=good_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    source_kernelspec = nbformat.read(source, as_version=4).metadata.get("kernelspec")
    start = time.perf_counter()
    try:
        try:
            papermill.execute_notebook(
                str(source),
                str(tmp),
                parameters=dict(parameters),
                kernel_name=kernel_name,
                language="python",
                progress_bar=False,
                cwd=str(source.parent),
                execution_timeout=execution_timeout,
                # every output has arrived when the last cell ends: stop the kernel at once rather
                # than wait for its interpreter to wind down (about 1.5 s per notebook)
                shutdown_kernel="immediate",
            )
        except Exception as error:  # noqa: BLE001 - any failure is reported, the run goes on
            seconds = time.perf_counter() - start
            message = _unavailable(error)
            if message is not None:
                return unavailable_notebook(source, run_dir, message, seconds)
            saved: Path | None = None
            if tmp.is_file() and tmp.stat().st_size > 0:
                with contextlib.suppress(Exception):
                    _finalize(tmp, source_kernelspec)
                    failed_dir.mkdir(parents=True, exist_ok=True)
                    saved = failed_dir / source.name
                    os.replace(tmp, saved)
            # An older success must not stand in for this failure in the book.
            final.unlink(missing_ok=True)
            return NotebookRun(source.stem, False, saved, _one_line(error), seconds)
        _finalize(tmp, source_kernelspec)
        os.replace(tmp, final)
        (failed_dir / source.name).unlink(missing_ok=True)
        return NotebookRun(source.stem, True, final, "", time.perf_counter() - start)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class NotebookTask:
    """One notebook to execute into a run folder: what :func:`run_task` needs, picklable (it travels
    to a Dask worker).

    Attributes:
        source: the notebook.
        run_dir: the run folder (``<run_dir>/notebooks/<stem>.ipynb``; see :func:`execute_notebook`).
        parameters: papermill parameters (``output_dir`` included).
        kernel_name: a registered Jupyter kernel, or ``None``: the interpreter running the task
            (:func:`this_python_kernel`).
        execution_timeout: seconds allowed per cell (``None``: no limit).
    """

    source: Path
    run_dir: Path
    parameters: Mapping[str, Any]
    kernel_name: str | None = None
    execution_timeout: float | None = None


#: One notebook at a time per process: the kernelspec and ``$CHEXP_PAGE_DIR`` a task sets are
#: process-wide (a Dask worker with several threads runs its notebooks one after the other).
_TASK_LOCK = threading.Lock()


def run_task(task: NotebookTask) -> NotebookRun:
    """Execute ``task`` in this process (the caller's, or a Dask worker's): :func:`execute_notebook`
    with ``$CHEXP_PAGE_DIR`` set to ``<run_dir>/notebooks``, in ``task.kernel_name`` or this
    interpreter's own kernel. Never raises for a failure inside the notebook."""
    kernel_context = (
        contextlib.nullcontext(task.kernel_name) if task.kernel_name is not None else this_python_kernel()
    )
    with _TASK_LOCK, _environ(PAGE_DIR_ENV, str(task.run_dir / "notebooks")), kernel_context as kernel:
        return execute_notebook(task.source, task.run_dir, task.parameters, kernel,
                                execution_timeout=task.execution_timeout)


def _lost(task: NotebookTask, error: BaseException) -> NotebookRun:
    """The failed run of a task whose worker gave no result (it died, or the task could not start)."""
    return NotebookRun(task.source.stem, False, None, f"worker: {_one_line(error)}", 0.0)


def _result(future: Any, task: NotebookTask) -> NotebookRun:
    """The run a finished future (Dask's or concurrent.futures') holds, or :func:`_lost` for it."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a lost worker fails its task, not the batch
        return _lost(task, error)


def run_tasks(
    tasks: Sequence[NotebookTask],
    scheduler: str | None = None,
    *,
    jobs: int = 1,
    progress: bool = True,
    desc: str = "notebooks",
    on_result: Callable[[int, NotebookRun], None] | None = None,
) -> list[NotebookRun]:
    """Execute ``tasks``: here, one after the other (``scheduler`` ``None`` / ``"sync"``), ``jobs``
    at a time in local worker processes (``jobs`` > 1, see the module docstring), or as tasks of
    the Dask cluster ``scheduler`` names (:func:`chexp.cluster.open_client`), as many at a time as
    it has worker processes.

    A failed notebook, or a worker that dies, is a failed :class:`NotebookRun`; the others go on.
    A tqdm bar (``progress``) counts finished tasks and prints each failure; ``on_result(index,
    run)`` is called here as each task finishes (in the order they finish).

    Returns:
        One run per task, in the order of ``tasks``.

    Raises:
        InvalidParameterError: a bad scheduler spec, ``jobs`` below 1, or ``jobs`` > 1 with a
            scheduler (before anything runs).
        MissingDependencyError: ``slurm`` without dask-jobqueue.
    """
    from chexp.progress import tqdm

    _check_jobs(jobs, scheduler)

    if not tasks:  # nothing to run: no cluster to start
        return []
    runs: list[NotebookRun | None] = [None] * len(tasks)
    bar = tqdm(total=len(tasks), desc=desc, unit="nb", disable=not progress, file=sys.stderr)
    with open_client(scheduler) as client:
        done = _completed_here(tasks, jobs) if client is None and jobs > 1 else _completed(tasks, client, bar)
        for index, run in done:
            runs[index] = run
            if on_result is not None:
                on_result(index, run)
            bar.update()
            if not run.ok:
                bar.write(f"{tasks[index].source.name} failed: {run.error}")
    bar.close()
    return [run for run in runs if run is not None]


def _completed(tasks: Sequence[NotebookTask], client: Any, bar: Any) -> Iterator[tuple[int, NotebookRun]]:
    """``(index, run)`` of each task as it finishes: in this process when ``client`` is ``None``."""
    if client is None:
        for index, task in enumerate(tasks):
            bar.set_postfix_str(task.source.stem)
            yield index, run_task(task)
        return
    from distributed import as_completed

    futures = client.map(run_task, list(tasks), pure=False)
    index_of = {future.key: index for index, future in enumerate(futures)}
    for future in as_completed(futures):
        index = index_of[future.key]
        run = _result(future, tasks[index])
        future.release()
        yield index, run


def _check_jobs(jobs: int, scheduler: str | None) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidParameterError(f"jobs must be an integer >= 1, got {jobs!r}")
    if jobs > 1 and parse_scheduler(scheduler).kind != "sync":
        raise InvalidParameterError("give either jobs > 1 (worker processes here) or a scheduler, not both")


def _passive_waits() -> None:
    """Worker initializer: the kernels it starts wait passively at OpenMP barriers."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _completed_here(tasks: Sequence[NotebookTask], jobs: int) -> Iterator[tuple[int, NotebookRun]]:
    """``(index, run)`` of each task as it finishes, ``jobs`` at a time in worker processes of
    this machine (each runs :func:`run_task`: its own kernelspec and environment), started first
    in the order of ``tasks``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # no copy of this process's threads or state
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context,
                             initializer=_passive_waits) as pool:
        futures = {pool.submit(run_task, task): index for index, task in enumerate(tasks)}
        for future in as_completed(futures):
            index = futures[future]
            yield index, _result(future, tasks[index])


def notebook_profiles(source: Path) -> tuple[str, ...] | None:
    """The profiles a notebook supports (its metadata ``chexp.profiles``), ``None`` for all.

    Raises:
        UnknownNameError: the metadata names a profile that is not in :data:`chexp.profiles.PROFILES`.
    """
    import nbformat

    from chexp.profiles import profile_class

    profiles = nbformat.read(source, as_version=4).metadata.get("chexp", {}).get("profiles")
    if profiles is None:
        return None
    for name in profiles:
        profile_class(name)
    return tuple(profiles)


def _text_page(source: Path, run_dir: Path, note: str, not_run: str) -> Path:
    """Save the notebook's markdown cells (no code) as ``<run>/notebooks/<stem>.ipynb``, with the
    admonition ``note`` after its first cell and ``not_run`` (why it was not run: ``"profile"`` or
    ``"data"``) as its ``chexp.not_run`` metadata, and drop any ``<run>/failed/`` copy; returns the
    path."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    from chexp.outputs import write_atomic

    notebook = nbformat.read(source, as_version=4)
    cells = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    notebook.cells = cells[:1] + [new_markdown_cell(note)] + cells[1:]
    notebook.metadata.setdefault("chexp", {})["not_run"] = not_run
    final = write_atomic(run_dir / "notebooks" / source.name, lambda path: nbformat.write(notebook, path))
    (run_dir / "failed" / source.name).unlink(missing_ok=True)
    return final


def skip_notebook(source: Path, run_dir: Path, profile: str, supported: Sequence[str]) -> NotebookRun:
    """Save the notebook's text without its code as ``<run>/notebooks/<stem>.ipynb``, with a note
    that it was not run for ``profile``, so that the book keeps the chapter and says why."""
    reason = f"supports the {', '.join(supported)} profile{'s' if len(supported) > 1 else ''} only"
    note = (
        f"```{{note}}\nThis chapter was not run: it {reason}, and this book was built with the "
        f"`{profile}` profile.\n```"
    )
    return NotebookRun(source.stem, True, _text_page(source, run_dir, note, "profile"), reason, 0.0,
                       skipped=True)


def unavailable_notebook(source: Path, run_dir: Path, message: str, seconds: float = 0.0) -> NotebookRun:
    """Save the notebook's text without its code as ``<run>/notebooks/<stem>.ipynb``, with a note
    that it stopped because a file could not be fetched, quoting ``message`` (chexp's
    :class:`~chexp.errors.DataUnavailableError` names the URL and where to put the file), so that
    the book keeps the chapter and says what to download."""
    reason = f"data unavailable: {message}"
    note = (
        "```{warning}\nThis chapter was not run to the end when this book was built: a file it "
        "needs could not be found or downloaded (no network?). Download it as the message says, "
        f"or point `CHEXP_DATA_DIR` at a folder that has it, and run the book again.\n\n"
        f"{message}\n```"
    )
    return NotebookRun(source.stem, True, _text_page(source, run_dir, note, "data"), reason, seconds,
                       skipped=True)


def _check_device(device: str) -> None:
    if not _DEVICE.match(device):
        raise InvalidParameterError(f"device {device!r} is not one of cpu, cuda, cuda:N, mps")


def reproduce(
    profile: str = "phantom",
    only: str | Sequence[str] | None = None,
    device: str = "cpu",
    params: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike[str] = "_build",
    build: bool = True,
    kernel_name: str | None = None,
    *,
    notebooks_dir: str | os.PathLike[str] | None = None,
    source_root: str | os.PathLike[str] = SOURCE_ROOT,
    execution_timeout: float | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    jobs: int = 1,
) -> ReproduceResult:
    """Run the notebooks with papermill, then build the book (see the module docstring).

    Args:
        profile: ``"phantom"``, ``"cohen"`` or ``"paper"`` (:data:`chexp.profiles.PROFILES`);
            notebooks whose metadata does not list it are skipped (:func:`skip_notebook`).
        only: run only notebooks whose stem or file name matches (glob allowed).
        device: torch device given to the notebooks (``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        params: more parameters for every notebook (for example ``{"n_samples": 64}``).
            ``profile``, ``device`` and ``output_dir`` have their own arguments.
        output_dir: the run folder.
        build: build the book into ``<output_dir>/html`` after running (warnings are
            errors).
        kernel_name: a registered Jupyter kernel to use instead of this interpreter.
        notebooks_dir: folder of notebooks (default ``<source_root>/notebooks``).
        source_root: folder holding ``_config.yml``, ``_toc.yml`` and ``book/`` (default
            :data:`chexp.paths.SOURCE_ROOT`: the checkout, or the copy installed with the wheel).
        execution_timeout: seconds allowed per cell (``None``: no limit).
        progress: show a tqdm progress bar over notebooks.
        scheduler: run the notebooks on this Dask cluster (:mod:`chexp.cluster`: ``local``,
            ``local:N``, ``tcp://HOST:PORT``, ``slurm``), several at a time; ``None``: here, one
            after the other.
        jobs: notebooks run at a time on this machine, each in its own kernel (the numbers are
            the same as one at a time; see the module docstring); not with ``scheduler``.

    Returns:
        A :class:`ReproduceResult`; ``result.exit_code`` is the CLI's exit status.

    Raises (before any notebook runs):
        UnknownNameError: an unknown profile or kernel, or ``only`` matching no notebook.
        InvalidParameterError: a bad ``device``, ``scheduler`` or ``jobs``, or a ``params`` key that is
            reserved or not an identifier.
        DataUnavailableError: no notebook folder, or no notebook in it.
        MissingDependencyError: ipykernel is not installed (when ``kernel_name`` is ``None``).
    """
    from chexp.profiles import profile_class

    profile_class(profile)
    _check_device(device)
    parse_scheduler(scheduler)
    _check_jobs(jobs, scheduler)
    params = dict(params or {})
    for key in params:
        if key in RESERVED_PARAMS:
            raise InvalidParameterError(f"params: give {key!r} with {RESERVED_PARAMS[key]}, not as a -p parameter")
        if not str(key).isidentifier():
            raise InvalidParameterError(f"params: parameter name {key!r} is not a Python identifier")
    source_root = Path(source_root)
    notebooks = find_notebooks(Path(notebooks_dir) if notebooks_dir else source_root / "notebooks", only)
    supported = {source: notebook_profiles(source) for source in notebooks}
    if kernel_name is not None:
        _check_kernel(kernel_name)
    run_dir = Path(output_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    result = ReproduceResult(run_dir)

    skipped: dict[Path, NotebookRun] = {}
    tasks: list[NotebookTask] = []
    for source in notebooks:
        profiles = supported[source]
        if profiles is not None and profile not in profiles:
            skipped[source] = skip_notebook(source, run_dir, profile, profiles)
            continue
        parameters = {**params, "profile": profile, "device": device,
                      "output_dir": str(run_dir / "outputs" / source.stem)}
        tasks.append(NotebookTask(source, run_dir, parameters, kernel_name, execution_timeout))
    # Download links under figures and tables are relative to the pages' folder (chexp.outputs):
    # run_task sets $CHEXP_PAGE_DIR to <run>/notebooks for each kernel.
    runs = run_tasks(tasks, scheduler, jobs=jobs, progress=progress)
    executed = dict(zip((task.source for task in tasks), runs, strict=True))
    result.runs = [skipped.get(source) or executed[source] for source in notebooks]
    missing = unexecuted_notebooks(run_dir, source_root) if build and only is not None else []
    if missing:
        result.build_skipped = _unbuilt(run_dir, missing)
    elif build:
        result.build = build_book(run_dir, source_root)
    return result


def _unbuilt(run_dir: Path, missing: Sequence[str]) -> str:
    """Why the book of ``run_dir`` is not built: its toc's chapters ``missing`` never ran there."""
    return (
        f"{len(missing)} chapter(s) never executed into {run_dir} ({', '.join(missing)}); "
        "run without --only, or rerun one chapter into a folder that holds a full run"
    )


@dataclass
class ProfilesResult:
    """Outcome of :func:`reproduce_profiles`: one :class:`ReproduceResult` per profile (each
    ``build`` ``None``) and the one book built from them."""

    run_dir: Path
    results: dict[str, ReproduceResult] = field(default_factory=dict)
    build: BuildResult | None = None
    #: Why the book was not built although asked for (``--only`` left chapters unexecuted).
    build_skipped: str | None = None

    @property
    def failed(self) -> list[NotebookRun]:
        return [run for result in self.results.values() for run in result.failed]

    @property
    def skipped(self) -> list[NotebookRun]:
        return [run for result in self.results.values() for run in result.skipped]

    @property
    def exit_code(self) -> int:
        """0 if every notebook of every profile ran and the book (when built) built cleanly, else 1."""
        return 1 if self.failed or (self.build is not None and not self.build.ok) else 0

    def summary(self) -> str:
        lines = [f"run folder: {self.run_dir}"]
        for profile, result in self.results.items():
            seconds = sum(run.seconds for run in result.runs)
            lines += [f"profile {profile} ({seconds:.0f} s):", *("  " + line for line in result.summary().splitlines())]
        lines += _build_lines(self.build_skipped, self.build)
        return "\n".join(lines)


def profile_names(values: Sequence[str] | None) -> list[str]:
    """The profiles named by ``--profile`` options (repeatable, each comma-separated), in order;
    ``["phantom"]`` when none.

    >>> profile_names(["phantom,cohen"]), profile_names(["phantom", "cohen"]), profile_names(None)
    (['phantom', 'cohen'], ['phantom', 'cohen'], ['phantom'])
    """
    names = [name.strip() for value in values or () for name in value.split(",") if name.strip()]
    return names or ["phantom"]


def reproduce_profiles(
    profiles: Sequence[str],
    only: str | Sequence[str] | None = None,
    output_dir: str | os.PathLike[str] = "_build",
    build: bool = True,
    *,
    source_root: str | os.PathLike[str] = SOURCE_ROOT,
    **options: Any,
) -> ProfilesResult:
    """Run the notebooks under each of ``profiles`` into ``<output_dir>/<profile>/``, then build
    one book of them all into ``<output_dir>/html`` (see the module docstring).

    Args:
        profiles: two or more distinct profile names; the first one's chapters are the book's,
            each further one's form a part of their own.
        only, output_dir, build, source_root: as for :func:`reproduce`; the book is not built
            when ``only`` leaves a chapter of the first profile unexecuted.
        options: the other keyword arguments of :func:`reproduce` (``device``, ``params``,
            ``kernel_name``, ``notebooks_dir``, ``execution_timeout``, ``progress``, ``scheduler``, ``jobs``), the same
            for every profile.

    Raises (before any notebook runs):
        UnknownNameError: an unknown profile.
        InvalidParameterError: no profile, or one named twice; and what :func:`reproduce` raises.
    """
    from chexp.profiles import profile_class

    for profile in profiles:
        profile_class(profile)
    run_dir = Path(output_dir).resolve()
    folders = profile_run_dirs(run_dir, profiles)
    result = ProfilesResult(run_dir)
    for profile, folder in folders.items():
        result.results[profile] = reproduce(profile, only, output_dir=folder, build=False,
                                            source_root=source_root, **options)
    first = folders[profiles[0]]
    missing = unexecuted_notebooks(first, Path(source_root)) if build and only is not None else []
    if missing:
        result.build_skipped = _unbuilt(first, missing)
    elif build:
        result.build = build_book(run_dir, Path(source_root), profiles=profiles)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp reproduce`` on ``parser``: its options and description; ``args.func(args)`` runs it."""
    parser.description = _DESCRIPTION
    parser.add_argument("--profile", action="append", default=None, metavar="NAME",
                        help="data/model profile, a name registered in chexp.profiles (default: phantom); "
                             "an unknown name is refused with the list of known ones. Repeatable, or "
                             "comma-separated (--profile phantom,cohen): each profile runs into "
                             "<output-dir>/<profile>/ and one book shows them all, the first profile's "
                             "chapters with a part per further profile")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="run only this notebook (stem, file name or glob); repeatable")
    parser.add_argument("--device", default="cpu", help="torch device for the notebooks (cpu, cuda, cuda:N, mps)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", type=parse_param,
                        help="extra notebook parameter; VALUE is a Python literal or else a string; repeatable")
    parser.add_argument("--output-dir", default="_build", type=Path, help="run folder (default: _build)")
    parser.add_argument("--no-build", dest="build", action="store_false", help="do not build the book")
    parser.add_argument("--kernel", default=None, help="use this registered Jupyter kernel instead of this Python")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per cell (default: none)")
    parser.add_argument("--notebooks-dir", type=Path, default=None,
                        help="folder of notebooks to run (default: the repository's notebooks/, "
                             "or the copy installed with chexp)")
    parser.add_argument("--scheduler", default=None, metavar="SPEC",
                        help=f"run the notebooks as tasks of a Dask cluster, several at a time: {SPEC_FORMS} "
                             "(default: here, one after the other)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="run N notebooks at a time on this machine, each in its own kernel; the numbers "
                             "are the same as one at a time (default: 1; make book uses 2)")
    parser.set_defaults(func=_run_from_args)


def _run_from_args(args: argparse.Namespace) -> int:
    result = _reproduce_from_args(args)  # bad option values raise ChexpErrors: chexp.cli prints them
    if result.build is not None and not result.build.ok:
        print(result.build.log[-6000:], file=sys.stderr)
    print(result.summary())
    return result.exit_code


def _reproduce_from_args(args: argparse.Namespace) -> ReproduceResult | ProfilesResult:
    profiles = profile_names(args.profile)
    options: dict[str, Any] = {
        "only": args.only,
        "device": args.device,
        "params": dict(args.param),
        "output_dir": args.output_dir,
        "build": args.build,
        "kernel_name": args.kernel,
        "execution_timeout": args.timeout,
        "notebooks_dir": args.notebooks_dir,
        "scheduler": args.scheduler,
        "jobs": args.jobs,
    }
    if len(profiles) > 1:
        return reproduce_profiles(profiles, **options)
    return reproduce(profile=profiles[0], **options)


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``reproduce`` to an ``argparse`` sub-parser set; ``args.func(args)`` runs it."""
    parser = subparsers.add_parser("reproduce", help="run every notebook with papermill and build the book")
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chexp.reproduce [options]``: the same as ``chexp reproduce [options]``."""
    from chexp.cli import main as cli_main

    return cli_main(["reproduce", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
