"""The book's "Across seeds" chapter: how the phantom results move when only the seed changes.

``book/seeds.md`` holds the chapter's fixed text (what the seed changes, how to produce the
numbers). When the book is staged, :func:`stage_seeds_page` appends to the staged copy the results
of the seeds sweep (``sweeps/seeds.yaml`` run by ``chexp sweep``, :mod:`chexp.sweep`) found in
:func:`seeds_sweep_dir`, or a note saying that this build has none and how to produce it.

The results are read off the sweep's run folders (``<sweep>/summary/runs.csv`` lists them), one per
notebook and seed:

- every claim of the book's scorecard (:data:`chexp.scorecard.CLAIMS`) whose notebook the sweep ran
  is graded in each seed (:func:`chexp.scorecard.evaluate_claim`); a claim *survives a reseed*
  when its verdict is the same in every seed;
- each of :data:`QUANTITIES` (one number per method or task, read from a notebook's table) is
  given per seed, with its mean, standard deviation, 95 % t-interval and range over seeds, and
  how stable the ordering is: the rank of each row in each seed, and in how many seeds each row
  is ahead of the next one in the order of the means.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .sweep.spec import SEED
from .sweep.summary import over_runs

__all__ = ["SEEDS_PAGE", "SWEEP_ENV", "Quantity", "QUANTITIES", "seeds_sweep_dir", "seeds_section",
           "stage_seeds_page"]

#: The chapter's page (``<entry>.md`` under the book's source); ``_toc.yml`` lists it.
SEEDS_PAGE = "book/seeds"
#: Environment variable: the seeds sweep folder to show (default :data:`DEFAULT_SWEEP` in the run folder).
SWEEP_ENV = "CHEXP_SEEDS_SWEEP"
#: Where ``make sweep`` puts the seeds sweep, relative to the book's run folder.
DEFAULT_SWEEP = Path("sweeps") / "seeds"
SWEEP_FILE = "sweeps/seeds.yaml"


def seeds_sweep_dir(run_dir: Path) -> Path:
    """The seeds sweep folder of a build: ``$CHEXP_SEEDS_SWEEP``, else ``<run_dir>/sweeps/seeds``."""
    env = os.environ.get(SWEEP_ENV)
    return Path(env).expanduser() if env else Path(run_dir) / DEFAULT_SWEEP


def _first_classifier(table: pd.DataFrame) -> pd.DataFrame:
    if "classifier" not in table.columns:
        return table
    return table[table["classifier"] == table["classifier"].iloc[0]]


def _gs_iou(table: pd.DataFrame) -> pd.Series:
    return _first_classifier(table).groupby("method", sort=False)["mean"].mean()


def _gs_auc(table: pd.DataFrame) -> pd.Series:
    return _first_classifier(table).set_index("task")["auc"]


def _gs_randomization(table: pd.DataFrame) -> pd.Series:
    rows = table[(table["metric"] == "spearman") & (table["step"] > 0)]
    return rows.groupby("method", sort=False)["mean"].mean()


def _ci_iou(table: pd.DataFrame) -> pd.Series:
    return table.set_index(table.columns[0])["mean IoU"]


@dataclass(frozen=True)
class Quantity:
    """One number per row (method or task) that a notebook's table gives, followed across seeds.

    Attributes:
        title: section title.
        notebook: the notebook's stem.
        table: the CSV it writes (``outputs/<notebook>/<table>.csv``).
        read: ``table -> Series`` (row label -> value).
        higher_first: rank the largest first (``False``: the smallest first).
        meaning: one sentence: what the number is and which way is better.
    """

    title: str
    notebook: str
    table: str
    read: Callable[[pd.DataFrame], pd.Series]
    higher_first: bool
    meaning: str


QUANTITIES: tuple[Quantity, ...] = (
    Quantity("Gifsplanation Table 1: mean IoU per method", "14_gs_table1_iou", "table1_iou_auc", _gs_iou, True,
             "Mean IoU with the findings' masks, averaged over tasks (higher: better localization)."),
    Quantity("Gifsplanation Table 1: classifier AUC per task", "14_gs_table1_iou", "auc", _gs_auc, True,
             "AUC of the phantom classifier per task on the seed's AUC images."),
    Quantity("Gifsplanation Fig. 5: similarity under cascading randomization", "15_gs_fig5_randomization",
             "fig5_randomization", _gs_randomization, False,
             "Mean Spearman correlation with the intact model's map over the randomized steps (lower: "
             "the map depends more on the weights; the paper: latentshift-max lowest, guided highest)."),
    Quantity("CheXplain-IBA Table 1: mean IoU per method", "23_ci_localization", "iou_summary", _ci_iou, True,
             "Mean IoU with the findings' masks over all tasks' images (higher: better localization)."),
)


def _runs(sweep_dir: Path) -> pd.DataFrame | None:
    path = sweep_dir / "summary" / "runs.csv"
    if not path.is_file():
        return None
    runs = pd.read_csv(path)
    return runs if SEED in runs.columns else None


def _seed_tables(runs: pd.DataFrame, sweep_dir: Path, notebook: str, table: str) -> dict[int, pd.DataFrame]:
    """Seed -> the table of the notebook's ok runs (one profile: the first)."""
    mine = runs[(runs["notebook"] == notebook) & (runs["status"] == "ok")]
    mine = mine[mine["profile"] == mine["profile"].iloc[0]] if not mine.empty else mine
    out = {}
    for row in mine.itertuples(index=False):
        csv = sweep_dir / row.folder / "outputs" / notebook / f"{table}.csv"
        if csv.is_file():
            out[int(getattr(row, SEED))] = pd.read_csv(csv)
    return dict(sorted(out.items()))


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "-" if np.isnan(value) else f"{value:.3f}"
    return str(value).replace("|", "\\|")


def _quantity_section(q: Quantity, runs: pd.DataFrame, sweep_dir: Path) -> list[str]:
    tables = _seed_tables(runs, sweep_dir, q.notebook, q.table)
    if not tables:
        return [f"### {q.title}", "", f"No finished run of `{q.notebook}` in the sweep wrote `{q.table}.csv`.", ""]
    values = pd.DataFrame({seed: q.read(table) for seed, table in tables.items()})  # rows x seeds
    stats = over_runs(values.to_numpy(dtype=float).T)
    summary = pd.DataFrame(stats, index=values.index).sort_values("mean", ascending=not q.higher_first)
    values = values.loc[summary.index]
    ranks = values.rank(ascending=not q.higher_first, method="min").astype(int)
    ahead = values.gt(values.shift(-1)) if q.higher_first else values.lt(values.shift(-1))
    seeds = list(values.columns)
    same_order = sum(list(values[s].sort_values(ascending=not q.higher_first).index) == list(values.index)
                     for s in seeds)
    lines = [f"### {q.title}", "", f"{q.meaning} From `{q.notebook}` (`{q.table}.csv`), seeds "
             f"{', '.join(map(str, seeds))}; rows in the order of their mean over seeds.", "",
             "| row | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean | std | 95 % interval | min – max | rank per seed | ahead of the next row in |",
             "|:--|" + "--:|" * len(seeds) + "--:|--:|:--|:--|:--|:--|"]
    labels = list(values.index)
    for i, label in enumerate(labels):
        row = summary.loc[label]
        nxt = f"{int(ahead.loc[label].sum())} of {len(seeds)} seeds" if i + 1 < len(labels) else "-"
        cells = [str(label), *(_cell(values.loc[label, s]) for s in seeds), _cell(row["mean"]), _cell(row["std"]),
                 f"{_cell(row['ci95_low'])} – {_cell(row['ci95_high'])}", f"{_cell(row['min'])} – {_cell(row['max'])}",
                 " ".join(str(r) for r in ranks.loc[label]), nxt]
        lines.append("| " + " | ".join(cells) + " |")
    top = labels[0]
    lines += ["", f"The full order of the means holds in {same_order} of {len(seeds)} seeds; {top} is "
              f"{'first' if q.higher_first else 'lowest'} in {int((ranks.loc[top] == 1).sum())} of {len(seeds)}.", ""]
    return lines


def _claims_section(runs: pd.DataFrame, sweep_dir: Path) -> list[str]:
    from .scorecard import CLAIMS, evaluate_claim

    swept = set(runs["notebook"])
    lines = ["## Which conclusions survive a reseed", "",
             "Each claim of the {doc}`scorecard` whose notebook the sweep ran, graded by the "
             "scorecard's own rule in every seed. A claim survives a reseed when its verdict is the same "
             "in every seed.", "",
             "| id | claim | verdict per seed | survives a reseed |", "|:--|:--|:--|:--|"]
    for claim in (c for c in CLAIMS if c.notebook in swept):
        mine = runs[(runs["notebook"] == claim.notebook) & (runs["status"] == "ok")].sort_values(SEED)
        verdicts = {int(getattr(r, SEED)): evaluate_claim(claim, sweep_dir / r.folder).verdict
                    for r in mine.itertuples(index=False)}
        if not verdicts:
            lines.append(f"| {claim.id} | {claim.statement} | no finished run | - |")
            continue
        counts = pd.Series(list(verdicts.values())).value_counts()
        per_seed = "; ".join(f"{s}: {v}" for s, v in verdicts.items())
        survives = (f"yes: {counts.index[0]} in all {len(verdicts)}" if len(counts) == 1 else
                    "no: " + ", ".join(f"{v} in {n}" for v, n in counts.items()))
        lines.append(f"| {claim.id} | {claim.statement} | {per_seed} | {survives} |")
    return lines + [""]


def _setup_section(runs: pd.DataFrame, sweep_dir: Path) -> list[str]:
    import json

    lines = ["## This build's sweep", "",
             f"Sweep folder `{sweep_dir.name}`: {len(runs)} runs, {int((runs['status'] == 'ok').sum())} finished. "
             "Parameters other than the seed (the notebooks' defaults for the rest):", "",
             "| notebook | parameters | seeds finished | failed |", "|:--|:--|:--|:--|"]
    for notebook, group in runs.groupby("notebook", sort=False):
        record = json.loads((sweep_dir / group["folder"].iloc[0] / "run.json").read_text(encoding="utf-8"))
        fixed = {k: v for k, v in record["parameters"].items() if k != SEED}
        ok = group[group["status"] == "ok"][SEED].tolist()
        failed = group[group["status"] != "ok"][SEED].tolist()
        lines.append(f"| `{notebook}` | {', '.join(f'`{k}={v!r}`' for k, v in fixed.items())} | "
                     f"{', '.join(map(str, ok)) or '-'} | {', '.join(map(str, failed)) or '-'} |")
    return lines + [""]


def seeds_section(sweep_dir: Path) -> str:
    """Markdown of the chapter's results from the seeds sweep in ``sweep_dir``, or of a note saying
    that there is none and how to produce it (see the module docstring)."""
    sweep_dir = Path(sweep_dir)
    runs = _runs(sweep_dir)
    if runs is None or runs.empty:
        return "\n".join([
            "## Results", "", "```{note}",
            f"This build has no seeds sweep (looked for `{DEFAULT_SWEEP}/summary/runs.csv` in the run folder, "
            f"or the folder `${SWEEP_ENV}` names). Produce it with `make sweep`, or with "
            f"`chexp sweep {SWEEP_FILE} --scheduler local --output-dir <run folder>/{DEFAULT_SWEEP}` "
            "before building the book.", "```", ""])
    lines = _setup_section(runs, sweep_dir) + _claims_section(runs, sweep_dir) + ["## Numbers across seeds", ""]
    for q in QUANTITIES:
        if q.notebook in set(runs["notebook"]):
            lines += _quantity_section(q, runs, sweep_dir)
    return "\n".join(lines)


def stage_seeds_page(page: Path, run_dir: Path) -> None:
    """Append :func:`seeds_section` of the build's seeds sweep (:func:`seeds_sweep_dir`) to the
    staged chapter ``page`` (``<stage>/book/seeds.md``)."""
    page = Path(page)
    text = page.read_text(encoding="utf-8").rstrip("\n")
    page.write_text(text + "\n\n" + seeds_section(seeds_sweep_dir(run_dir)) + "\n", encoding="utf-8")
