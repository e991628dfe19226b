"""chexp sweep: the sweep file's checks, run keys, resuming, failures, summaries over seeds, and
``chexp reproduce --scheduler``. The notebook is tests/fixtures/sweep/t1_table.ipynb, which writes a
table computed from its parameters (``value`` = scale * (1 + seed) for row a, scale * 2 * seed for b)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import chexp.reproduce
from chexp.errors import DataUnavailableError, InvalidParameterError, UnknownNameError
from chexp.reproduce import reproduce
from chexp.sweep import load_sweep, parse_sweep, plan_runs, run_key, run_sweep, summarize_tables

FIXTURES = Path(__file__).parent / "fixtures" / "sweep"
NOTEBOOK = FIXTURES / "t1_table.ipynb"
SCALE = 2.0


def _spec(**changes: object) -> dict:
    data: dict = {"name": "t", "grid": {"seed": [0, 1, 2]}, "notebooks": {"t1_table": {"params": {"scale": SCALE}}}}
    data.update(changes)
    return data


@pytest.mark.parametrize(("changes", "error", "match"), [
    ({"notebooks": ["t9_nothing"]}, UnknownNameError, "Unknown notebook 't9_nothing'. Valid: t1_table"),
    ({"profiles": ["phantom", "nope"]}, UnknownNameError, "Unknown profile 'nope'"),
    ({"grid": {"seed": 3}}, InvalidParameterError, "grid: 'seed' must be a non-empty list"),
    ({"grid": {"seed": []}}, InvalidParameterError, "grid: 'seed' must be a non-empty list"),
    ({"grid": {"seed": [1, 1]}}, InvalidParameterError, "lists a value twice"),
    ({"grid": {"sede": [0, 1]}}, InvalidParameterError, "no parameter 'sede' in its parameters cell"),
    ({"grid": {"profile": ["phantom"]}}, InvalidParameterError, "'profile' is set by the sweep"),
    ({"params": {"scael": 1.0}}, InvalidParameterError, "no parameter 'scael'"),
    ({"seeds": [0, 1]}, InvalidParameterError, "unknown key 'seeds'; allowed: name, description"),
    ({"notebooks": {"t1_table": {"param": {}}}}, InvalidParameterError, "t1_table: unknown key 'param'"),
    ({"notebooks": {"t1_table": {"params": {"seed": 1}}}}, InvalidParameterError, "both fixed and in the grid"),
    ({"notebooks": []}, InvalidParameterError, "notebooks: expected a non-empty list"),
    ({"profiles": ["paper"]}, InvalidParameterError, "supports the profiles phantom, cohen, none of the sweep's"),
    ({"device": "gpu"}, InvalidParameterError, "device 'gpu'"),
])
def test_bad_sweep_files_are_refused_with_a_clear_message(changes: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        parse_sweep(_spec(**changes), FIXTURES)


def test_sweep_file_not_found_or_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_sweep(tmp_path / "missing.yaml", FIXTURES)
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="not valid YAML"):
        load_sweep(bad, FIXTURES)


def test_shipped_seeds_sweep_is_valid() -> None:
    spec = load_sweep("seeds")  # by name: sweeps/seeds.yaml
    assert spec.path is not None and spec.path.parts[-2:] == ("sweeps", "seeds.yaml")
    assert [e.stem for e in spec.notebooks] == ["14_gs_table1_iou", "15_gs_fig5_randomization", "23_ci_localization"]
    assert spec.grid == {"seed": (0, 1, 2, 3, 4)} and spec.n_runs == 15
    assert {run.profile for run in plan_runs(spec)} == {"phantom"}


def test_run_key_is_stable_and_changes_with_notebook_parameters_and_version(tmp_path: Path) -> None:
    params = {"scale": 1.0, "seed": 0, "profile": "phantom", "device": "cpu"}
    key = run_key(NOTEBOOK, params)
    assert key == run_key(NOTEBOOK, dict(reversed(params.items())))  # order does not matter
    assert len(key) == 16 and int(key, 16) >= 0
    assert run_key(NOTEBOOK, {**params, "seed": 1}) != key
    assert run_key(NOTEBOOK, {**params, "scale": 1}) != key  # papermill would inject 1, not 1.0
    assert run_key(NOTEBOOK, params, version="0.0.0") != key
    changed = tmp_path / NOTEBOOK.name
    changed.write_bytes(NOTEBOOK.read_bytes().replace(b"scale = 1.0", b"scale = 3.0"))
    assert run_key(changed, params) != key
    shutil.copy(NOTEBOOK, changed)
    assert run_key(changed, params) == key  # content, not path


def _count_executions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    execute = chexp.reproduce.execute_notebook

    def counting(source, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(Path(source).stem)
        return execute(source, *args, **kwargs)

    monkeypatch.setattr(chexp.reproduce, "execute_notebook", counting)
    return calls


def test_sweep_summarizes_over_seeds_and_a_second_run_executes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_file = tmp_path / "t.yaml"
    sweep_file.write_text(yaml.safe_dump(_spec()), encoding="utf-8")
    out = tmp_path / "out"
    calls = _count_executions(monkeypatch)
    first = run_sweep(sweep_file, out, notebooks_dir=FIXTURES, progress=False)
    assert first.exit_code == 0 and len(first.executed) == 3 and len(calls) == 3
    assert (out / "sweep.yaml").read_text(encoding="utf-8") == sweep_file.read_text(encoding="utf-8")
    assert not list(out.rglob(".*partial*"))  # nothing half-written

    summary = pd.read_csv(out / "summary" / "t1_table" / "scores.csv")
    assert list(summary.columns) == ["profile", "method", "n", "quantity", "mean", "std", "min", "max",
                                     "ci95_low", "ci95_high", "n_runs"]
    a = summary[summary["method"] == "a"].iloc[0]  # 2 * (1 + seed): 2, 4, 6
    b = summary[summary["method"] == "b"].iloc[0]  # 2 * 2 * seed: 0, 4, 8
    half = 4.302652729911275 / np.sqrt(3)  # t(0.975, 2) / sqrt(n)
    assert (a["mean"], a["std"], a["min"], a["max"], a["n_runs"]) == pytest.approx((4.0, 2.0, 2.0, 6.0, 3))
    assert (a["ci95_low"], a["ci95_high"]) == pytest.approx((4.0 - 2.0 * half, 4.0 + 2.0 * half))
    assert (b["mean"], b["std"], b["min"], b["max"]) == pytest.approx((4.0, 4.0, 0.0, 8.0))
    assert set(summary["quantity"]) == {"value"} and set(summary["n"]) == {2}
    assert any("text columns that differ between runs left out: text" in note for note in first.not_summarized)
    runs = pd.read_csv(out / "summary" / "runs.csv")
    assert sorted(runs["seed"]) == [0, 1, 2] and set(runs["status"]) == {"ok"}
    assert pd.read_csv(out / "summary" / "failures.csv").empty
    assert "## t1_table: scores" in (out / "summary" / "summary.md").read_text(encoding="utf-8")

    calls.clear()
    second = run_sweep(sweep_file, out, notebooks_dir=FIXTURES, progress=False)
    assert second.executed == [] and calls == []  # resumed: nothing executed
    assert second.exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary" / "t1_table" / "scores.csv"), summary)


def test_a_failed_run_is_reported_while_the_others_finish_on_two_workers(tmp_path: Path) -> None:
    spec = parse_sweep(_spec(grid={"seed": [0, 1]}, params={"fail_on_seed": 1}), FIXTURES)
    result = run_sweep(spec, tmp_path, scheduler="local:2", progress=False)
    assert result.exit_code == 1 and len(result.executed) == 2
    assert [dict(run.point) for run in result.failed] == [{"seed": 1}]
    failures = pd.read_csv(tmp_path / "summary" / "failures.csv")
    assert failures["seed"].tolist() == [1] and failures["error"].str.contains("seed 1 fails on purpose").all()
    ok = next(run for run in result.runs if run.point["seed"] == 0)
    assert (ok.folder(tmp_path) / "outputs" / "t1_table" / "scores.csv").is_file()
    failed = result.failed[0].folder(tmp_path)
    assert (failed / "failed" / "t1_table.ipynb").is_file() and not (failed / "notebooks" / "t1_table.ipynb").exists()
    assert "FAILED t1_table phantom {'seed': 1}" in result.summary()
    summary = pd.read_csv(tmp_path / "summary" / "t1_table" / "scores.csv")  # the one finished seed
    assert set(summary["quantity"]) == {"value", "n"} and set(summary["n_runs"]) == {1} and summary["std"].isna().all()


def test_summarize_tables_keys_varying_columns_and_misaligned_tables() -> None:
    t0 = pd.DataFrame({"task": ["x", "y"], "step": [0, 1], "iou": [0.1, 0.3], "fmt": ["0.1", "0.3"]})
    t1 = pd.DataFrame({"task": ["x", "y"], "step": [0, 1], "iou": [0.3, np.nan], "fmt": ["0.3", "nan"]})
    result = summarize_tables([t0, t1])
    assert result.dropped == ("fmt",)
    table = result.table
    assert list(table["task"]) == ["x", "y"] and list(table["step"]) == [0, 1]
    assert table["mean"].tolist() == pytest.approx([0.2, 0.3]) and table["n_runs"].tolist() == [2, 1]
    assert table["std"].iloc[0] == pytest.approx(np.std([0.1, 0.3], ddof=1)) and np.isnan(table["std"].iloc[1])
    assert summarize_tables([t0, t0.iloc[:1]]).reason == "the runs' tables have different numbers of rows"
    assert summarize_tables([t0, t0.rename(columns={"iou": "IoU"})]).table is None


def test_reproduce_through_a_local_cluster_writes_what_it_writes_here(tmp_path: Path) -> None:
    common = {"notebooks_dir": FIXTURES, "build": False, "progress": False, "params": {"seed": 2, "scale": 0.5}}
    here = reproduce(output_dir=tmp_path / "here", **common)
    there = reproduce(output_dir=tmp_path / "there", scheduler="local:2", **common)
    assert here.exit_code == there.exit_code == 0
    assert [r.name for r in here.runs] == [r.name for r in there.runs] == ["t1_table"]
    csv = Path("outputs") / "t1_table" / "scores.csv"
    assert (tmp_path / "here" / csv).read_text() == (tmp_path / "there" / csv).read_text()
    assert pd.read_csv(tmp_path / "there" / csv)["value"].tolist() == [1.5, 2.0]
    with pytest.raises(InvalidParameterError, match="is not one of"):
        reproduce(output_dir=tmp_path / "bad", scheduler="locall", **common)


def _fake_seeds_sweep(folder: Path, ious: dict[int, dict[str, float]]) -> None:
    """A seeds sweep folder as chexp sweep leaves it, for 23_ci_localization only: per seed a run folder
    with the executed notebook's papermill metadata, run.json and iou_summary.csv."""
    import json

    stem, rows = "23_ci_localization", []
    for seed, iou in ious.items():
        run = folder / "runs" / f"{stem}-{seed:016x}"
        (run / "notebooks").mkdir(parents=True)
        parameters = {"ig_steps": 50, "seed": seed, "profile": "phantom", "device": "cpu"}
        notebook = {"cells": [], "nbformat": 4, "nbformat_minor": 5,
                    "metadata": {"papermill": {"parameters": parameters}}}
        (run / "notebooks" / f"{stem}.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        (run / "run.json").write_text(json.dumps({"parameters": parameters, "status": "ok"}), encoding="utf-8")
        (run / "outputs" / stem).mkdir(parents=True)
        pd.DataFrame({"method": list(iou), "mean IoU": list(iou.values())}).to_csv(
            run / "outputs" / stem / "iou_summary.csv", index=False)
        rows.append({"notebook": stem, "profile": "phantom", "seed": seed, "status": "ok",
                     "folder": str(run.relative_to(folder))})
    (folder / "summary").mkdir()
    pd.DataFrame(rows).to_csv(folder / "summary" / "runs.csv", index=False)


def test_seeds_chapter_shows_intervals_and_which_claims_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chexp.seeds import SWEEP_ENV, seeds_section, stage_seeds_page

    ious = {0: {"IBA": 0.2, "Multi-layer IBA": 0.4, "Grad-CAM": 0.1},
            1: {"IBA": 0.3, "Multi-layer IBA": 0.5, "Grad-CAM": 0.1},
            2: {"IBA": 0.5, "Multi-layer IBA": 0.3, "Grad-CAM": 0.2}}  # seed 2: IBA beats Multi-layer IBA
    sweep = tmp_path / "sweep"
    _fake_seeds_sweep(sweep, ious)
    text = seeds_section(sweep)
    # C4 (Multi-layer IBA best): reproduced in seeds 0 and 1, not reproduced in seed 2
    c4 = next(line for line in text.splitlines() if line.startswith("| C4 |"))
    assert "0: reproduced; 1: reproduced; 2: not reproduced" in c4 and "no: reproduced in 2, not reproduced in 1" in c4
    ml = next(line for line in text.splitlines() if line.startswith("| Multi-layer IBA |"))
    half = 4.302652729911275 * 0.1 / np.sqrt(3)  # std of 0.4, 0.5, 0.3 is 0.1
    assert f"| 0.400 | 0.100 | {0.4 - half:.3f} – {0.4 + half:.3f} | 0.300 – 0.500 | 1 1 2 |" in ml
    assert "| 2 of 3 seeds |" in ml  # ahead of IBA (the next by mean) in seeds 0 and 1
    assert "The full order of the means holds in 2 of 3 seeds; Multi-layer IBA is first in 2 of 3." in text
    assert "`ig_steps=50`" in text

    page = tmp_path / "seeds.md"
    page.write_text("# Across seeds\n", encoding="utf-8")
    monkeypatch.delenv(SWEEP_ENV, raising=False)
    stage_seeds_page(page, tmp_path / "run")  # no <run>/sweeps/seeds: says how to produce it
    assert "This build has no seeds sweep" in page.read_text(encoding="utf-8") and "make sweep" in page.read_text()
    page.write_text("# Across seeds\n", encoding="utf-8")
    monkeypatch.setenv(SWEEP_ENV, str(sweep))
    stage_seeds_page(page, tmp_path / "run")
    assert page.read_text(encoding="utf-8").startswith("# Across seeds\n\n## This build's sweep")
