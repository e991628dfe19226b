"""``chexp sweep``: run every (notebook, profile, grid point) of a sweep file, resumably, then summarize.

Layout of a sweep folder ``<out>`` (``--output-dir``)::

    <out>/sweep.yaml                   the sweep file this folder was last run with
    <out>/runs/<stem>-<key>/           one run: a ``chexp reproduce`` run folder (notebooks/,
                                       failed/, outputs/<stem>/) and run.json (its parameters,
                                       status, seconds)
    <out>/summary/runs.csv             every run of the sweep file: notebook, profile, grid values,
                                       key, status, seconds, error, folder
    <out>/summary/failures.csv         the failed runs (same columns)
    <out>/summary/<stem>/<table>.csv   mean and spread over seeds of each table of the notebook
                                       (:func:`chexp.sweep.summary.summarize_tables`), one block of
                                       rows per profile and non-seed grid values
    <out>/summary/summary.md           all of the above as Markdown

``key`` (:func:`run_key`) hashes the notebook's content, the run's parameters and the chexp version:
a run whose ``run.json`` says it finished is not run again (a second invocation of a finished
sweep executes nothing), and a changed notebook, parameter or chexp version runs anew in a new
folder. Failed runs are run again on the next invocation. Notebooks are executed through
:func:`chexp.reproduce.run_tasks` (here, or on a Dask cluster: :mod:`chexp.cluster`); every file is
written through a temporary name and renamed, so an interrupted sweep leaves no half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..outputs import write_atomic
from .spec import SEED, NotebookEntry, SweepSpec, load_sweep
from .summary import STATS, markdown_table, summarize_tables

__all__ = ["RUN_RECORD", "Run", "SweepResult", "run_key", "plan_runs", "run_sweep", "summarize_sweep"]

#: The file of a run folder that records its parameters and outcome (written last).
RUN_RECORD = "run.json"
SUMMARY_DIR = "summary"


def run_key(source: Path, parameters: Mapping[str, Any], version: str = __version__) -> str:
    """16 hex digits of the sha256 of the notebook's bytes, ``parameters`` (as sorted JSON) and the
    chexp ``version``: equal for the same run, different when any of the three changes."""
    notebook = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    text = json.dumps({"notebook": notebook, "parameters": dict(parameters), "chexp": version},
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Run:
    """One run of a sweep: a notebook under a profile at a grid point.

    Attributes:
        entry: the notebook.
        profile: the profile.
        point: the grid values (``{"seed": 3}``).
        parameters: every parameter but ``output_dir`` (fixed ones, the grid values, ``profile``,
            ``device``): what :func:`run_key` hashes.
        key: :func:`run_key`.
    """

    entry: NotebookEntry
    profile: str
    point: Mapping[str, Any]
    parameters: Mapping[str, Any]
    key: str

    def folder(self, out: Path) -> Path:
        """The run folder under sweep folder ``out``."""
        return Path(out) / "runs" / f"{self.entry.stem}-{self.key}"

    def group(self) -> tuple[str, str, str]:
        """Runs that differ only in their seed share it: (notebook, profile, other grid values)."""
        rest = {name: value for name, value in self.point.items() if name != SEED}
        return self.entry.stem, self.profile, json.dumps(rest, sort_keys=True, default=repr)


def plan_runs(spec: SweepSpec) -> list[Run]:
    """Every run of ``spec``: notebooks in file order, then profiles, then grid points."""
    runs = []
    for entry in spec.notebooks:
        for profile in entry.profiles:
            for point in spec.points():
                parameters = {**entry.params, **point, "profile": profile, "device": spec.device}
                runs.append(Run(entry, profile, point, parameters, run_key(entry.source, parameters)))
    return runs


def _record(run: Run, out: Path) -> dict[str, Any] | None:
    path = run.folder(out) / RUN_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def _done(run: Run, out: Path) -> bool:
    record = _record(run, out)
    return record is not None and record.get("status") == "ok"


def _status(ok: bool, skipped: bool) -> str:
    return "skipped" if skipped else "ok" if ok else "failed"


def _write_record(run: Run, out: Path, status: str, seconds: float, error: str) -> None:
    record = {"notebook": run.entry.stem, "profile": run.profile, "point": dict(run.point),
              "parameters": dict(run.parameters), "key": run.key, "chexp": __version__,
              "status": status, "seconds": round(seconds, 3), "error": error}
    write_atomic(run.folder(out) / RUN_RECORD,
                 lambda path: path.write_text(json.dumps(record, indent=1, default=repr), encoding="utf-8"))


@dataclass
class SweepResult:
    """Outcome of :func:`run_sweep`.

    Attributes:
        out: the sweep folder.
        runs: every run of the sweep file.
        executed: keys of the runs executed by this invocation.
        summaries: summary CSVs written (``summary/<stem>/<table>.csv``).
        not_summarized: ``"<stem>/<table>: why"`` for tables that could not be summarized.
        seconds: wall time of the executions.
    """

    out: Path
    runs: list[Run]
    executed: list[str] = field(default_factory=list)
    summaries: list[Path] = field(default_factory=list)
    not_summarized: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def status(self, run: Run) -> dict[str, Any]:
        """The run's record (``{"status": "missing"}`` when it has none)."""
        return _record(run, self.out) or {"status": "missing", "seconds": float("nan"), "error": ""}

    @property
    def failed(self) -> list[Run]:
        return [run for run in self.runs if self.status(run)["status"] != "ok"]

    @property
    def exit_code(self) -> int:
        """0 when every run finished (now or before), else 1."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        """A few lines for the terminal."""
        reused = len(self.runs) - len(self.executed)
        lines = [f"sweep folder: {self.out}",
                 f"runs: {len(self.runs)} ({len(self.executed)} executed in {self.seconds:.1f} s, "
                 f"{reused} done before), {len(self.failed)} not ok"]
        lines += [f"  FAILED {run.entry.stem} {run.profile} {dict(run.point)}: {self.status(run)['error']}"
                  for run in self.failed]
        lines += [f"summary: {path}" for path in self.summaries]
        lines += [f"not summarized: {why}" for why in self.not_summarized]
        return "\n".join(lines)


def _runs_table(result: SweepResult) -> Any:
    import pandas as pd

    rows = []
    for run in result.runs:
        record = result.status(run)
        rows.append({"notebook": run.entry.stem, "profile": run.profile, **run.point, "key": run.key,
                     "status": record["status"], "seconds": record.get("seconds"), "error": record.get("error", ""),
                     "executed": run.key in result.executed,
                     "folder": os.path.relpath(run.folder(result.out), result.out)})
    return pd.DataFrame(rows)


def _csv(table: Any, path: Path) -> Path:
    return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))


def _table_names(entry: NotebookEntry, runs: Sequence[Run], out: Path) -> list[str]:
    if entry.tables is not None:
        return list(entry.tables)
    names = {path.stem for run in runs for path in (run.folder(out) / "outputs" / entry.stem).glob("*.csv")}
    return sorted(names)


def _summarize_table(runs: Sequence[Run], out: Path, name: str) -> tuple[Any, list[str]]:
    """The summary of table ``name`` over ``runs`` (their ok runs), one block per group, and notes."""
    import pandas as pd

    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        if _done(run, out):
            groups.setdefault(run.group(), []).append(run)
    blocks, notes = [], []
    for group_runs in groups.values():
        paths = [run.folder(out) / "outputs" / run.entry.stem / f"{name}.csv" for run in group_runs]
        tables = [pd.read_csv(path) for path in paths if path.is_file()]
        first = group_runs[0]
        where = f"{first.entry.stem}/{name} ({first.profile}, {json.loads(first.group()[2]) or 'no other grid values'})"
        if not tables:
            notes.append(f"{where}: no run wrote it")
            continue
        summary = summarize_tables(tables)
        if summary.table is None:
            notes.append(f"{where}: {summary.reason}")
            continue
        if summary.dropped:
            notes.append(f"{where}: text columns that differ between runs left out: {', '.join(summary.dropped)}")
        rest = {k: v for k, v in first.point.items() if k != SEED}
        labels = {"profile": first.profile, **{k: repr(v) if isinstance(v, list) else v for k, v in rest.items()}}
        blocks.append(summary.table.assign(**labels)[[*labels, *summary.table.columns]])
    return (pd.concat(blocks, ignore_index=True) if blocks else None), notes


def summarize_sweep(result: SweepResult) -> None:
    """Write ``summary/`` of the sweep folder (see the module docstring) and fill
    ``result.summaries`` and ``result.not_summarized``."""
    out = result.out / SUMMARY_DIR
    runs_table = _runs_table(result)
    _csv(runs_table, out / "runs.csv")
    failures = runs_table[runs_table["status"] != "ok"]
    _csv(failures, out / "failures.csv")
    sections = []
    by_entry: dict[str, list[Run]] = {}
    for run in result.runs:
        by_entry.setdefault(run.entry.stem, []).append(run)
    for stem, runs in by_entry.items():
        for name in _table_names(runs[0].entry, runs, result.out):
            table, notes = _summarize_table(runs, result.out, name)
            result.not_summarized += notes
            if table is None:
                continue
            result.summaries.append(_csv(table, out / stem / f"{name}.csv"))
            sections += [f"## {stem}: {name}", "", markdown_table(table), ""]
    counts = runs_table["status"].value_counts().to_dict()
    lines = [f"# Sweep summary: {result.out.name}", "",
             f"{len(result.runs)} runs: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + ". "
             f"Statistics over the runs that differ only in `{SEED}`: {', '.join(STATS)} "
             "(ci95: the 95 % t-interval of the mean).", ""]
    if not failures.empty:
        lines += ["## Failures", "", markdown_table(failures), ""]
    if result.not_summarized:
        lines += ["## Not summarized", "", *[f"- {why}" for why in result.not_summarized], ""]
    write_atomic(out / "summary.md",
                 lambda path: path.write_text("\n".join(lines + sections) + "\n", encoding="utf-8"))


def run_sweep(
    sweep: str | os.PathLike[str] | SweepSpec,
    output_dir: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    *,
    notebooks_dir: str | os.PathLike[str] | None = None,
    execution_timeout: float | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run the sweep file ``sweep`` into ``output_dir``, skipping runs done before, then summarize.

    Args:
        sweep: a sweep file (:mod:`chexp.sweep.spec`) or a parsed one.
        output_dir: the sweep folder (default ``_build/sweeps/<name>``: where the book looks for the
            seeds sweep, :mod:`chexp.seeds`).
        scheduler: where the notebooks run (:mod:`chexp.cluster`); ``None``: here, one at a time.
        notebooks_dir: the notebooks the sweep file names (default: :data:`chexp.paths.NOTEBOOKS_DIR`).
        execution_timeout: seconds allowed per cell (``None``: no limit).
        progress: a tqdm bar over runs.

    Returns:
        A :class:`SweepResult`; ``exit_code`` is 1 when a run failed.

    Raises (before any run):
        DataUnavailableError, InvalidParameterError, UnknownNameError: a bad sweep file or
            scheduler spec (:func:`chexp.sweep.spec.load_sweep`, :func:`chexp.cluster.parse_scheduler`).
    """
    import time

    from ..cluster import parse_scheduler
    from ..reproduce import NotebookRun, NotebookTask, run_tasks

    parse_scheduler(scheduler)
    spec = sweep if isinstance(sweep, SweepSpec) else load_sweep(
        sweep, Path(notebooks_dir) if notebooks_dir is not None else None)
    out = Path(output_dir if output_dir is not None else Path("_build") / "sweeps" / spec.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if spec.path is not None:
        write_atomic(out / "sweep.yaml", lambda path: shutil.copyfile(spec.path, path))
    result = SweepResult(out, plan_runs(spec))
    todo = [run for run in result.runs if not _done(run, out)]
    tasks = [NotebookTask(run.entry.source, run.folder(out),
                          {**run.parameters, "output_dir": str(run.folder(out) / "outputs" / run.entry.stem)},
                          execution_timeout=execution_timeout) for run in todo]
    if progress:
        print(f"{len(todo)} of {len(result.runs)} runs to execute ({len(result.runs) - len(todo)} done before)",
              file=sys.stderr)

    def finished(index: int, outcome: NotebookRun) -> None:  # recorded at once: an interrupted sweep resumes
        _write_record(todo[index], out, _status(outcome.ok, outcome.skipped), outcome.seconds, outcome.error)
        result.executed.append(todo[index].key)

    start = time.perf_counter()
    run_tasks(tasks, scheduler, progress=progress, desc="runs", on_result=finished)
    result.seconds = time.perf_counter() - start
    summarize_sweep(result)
    return result
