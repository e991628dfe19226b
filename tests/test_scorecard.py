"""The Scorecard page (chexp.scorecard): verdicts from a fake run folder with known tables,
claims that point at real notebooks and tables, and the page of a real run when one is at hand."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from chexp.book import toc_notebooks
from chexp.profiles import PROFILES
from chexp.reproduce import skip_notebook, unavailable_notebook
from chexp.scorecard import (
    CLAIMS,
    DIRECTION_HOLDS,
    NOT_REPRODUCED,
    NOT_RUNNABLE,
    PAPERS,
    REPRODUCED,
    VERDICTS,
    Claim,
    evaluate_claim,
    scorecard_page,
)

REPO = Path(__file__).resolve().parents[1]
#: a finished phantom run folder (``make book``'s ``_build``) to grade, if the developer names one
BEFORE_RUN = Path(os.environ.get("CHEXP_PHANTOM_RUN", "/nonexistent"))
BY_ID = {claim.id: claim for claim in CLAIMS}


def _executed(run: Path, stem: str, profile: str) -> None:
    """An executed notebook as papermill leaves it (parameters in the metadata)."""
    nb = {"cells": [], "metadata": {"papermill": {"parameters": {"profile": profile}}},
          "nbformat": 4, "nbformat_minor": 5}
    (run / "notebooks").mkdir(parents=True, exist_ok=True)
    (run / "notebooks" / f"{stem}.ipynb").write_text(json.dumps(nb), encoding="utf-8")


def _table(run: Path, claim_id: str, rows: list[dict[str, object]]) -> None:
    path = run / BY_ID[claim_id].csv
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _fake_run(run: Path) -> None:
    """A run whose tables give each claim a known verdict (see ``EXPECTED``)."""
    for claim in CLAIMS:
        if claim.notebook not in ("21_ci_insertion_deletion", "25_ci_multilayer_iba"):
            _executed(run, claim.notebook, "paper" if claim.notebook.startswith("19_") else "phantom")
    # G1, G2: every best IoU <= 0.35 at AUC 0.9 (a value claim, capped on phantoms); latentshift-max first.
    iou = {"grad": 0.2, "guided": 0.25, "integrated": 0.1, "latentshift-max": 0.3, "latentshift-counterfactual": 0.05}
    _table(run, "G1", [{"task": task, "auc": 0.9, "method": m, "iou": "-", "mean": v + shift}
                       for task, shift in (("A", 0.0), ("B", 0.04)) for m, v in iou.items()])
    # G3: MAE falls at every step; G4: IoU ends above where it starts but not at every step.
    _table(run, "G3", [{"latent_channels": c, "latent_size": s, "mae": mae, "iou_mean": i}
                       for c, s, mae, i in ((8, 512, 79.0, 0.3), (2, 128, 80.0, 0.1), (32, 2048, 78.0, 0.2))])
    # G5, G6: Spearman over randomized steps: latentshift-max lowest, guided highest (Pearson says otherwise).
    spearman = {"latentshift-max": 0.1, "grad": 0.2, "integrated": 0.3, "guided": 0.4, "lrp": 0.0}
    _table(run, "G5", [{"method": m, "step": step, "layers": "x", "metric": metric,
                        "mean": 1.0 if step == 0 else v if metric == "spearman" else 1 - v, "std": 0.0}
                       for m, v in spearman.items() for step in (0, 1, 2) for metric in ("pearson", "spearman")])
    # G7 matches the paper; G8's false positives are significant (not what the paper found).
    _table(run, "G7", [
        {"question": "confidence", "predictions": "false positive", "mean": 0.3, "std": 1.0, "p": 0.01},
        {"question": "confidence", "predictions": "true positive", "mean": 0.151, "std": 0.949, "p": 0.012},
    ])
    # G9 under the paper profile, within 0.03 of 0.12 / 0.04: reproduced, not capped.
    _table(run, "G9", [{"label": label, "task": task, "n": n, "diff": d}
                       for label, task, n, d in (("positive", "A", 10, 0.10), ("positive", "B", 30, 0.14),
                                                 ("negative", "A", 20, 0.05), ("negative", "B", 20, 0.03))])
    # C1: Inverse IBA finds a little more of the weaker side (< 0.05 more).
    _table(run, "C1", [{"method": "IBA", "weaker side": 0.10}, {"method": "Inverse IBA", "weaker side": 0.12}])
    # C2: notebook 21 failed. C3: within 0.05 of the paper, but on phantoms (capped).
    (run / "failed").mkdir()
    (run / "failed" / "21_ci_insertion_deletion.ipynb").write_text("{}", encoding="utf-8")
    _table(run, "C3", [{"map": m, "mean r": r} for m, r in
                       (("MSE", 0.45), ("Regression maximization", 0.50), ("Deviation", 0.42), ("random", 0.01))])
    # C4: Multi-layer IBA beats IBA but not LRP. C5: notebook 25 never ran.
    _table(run, "C4", [{"method": m, "mean IoU": v} for m, v in (("LRP", 0.4), ("IBA", 0.2), ("Multi-layer IBA", 0.3))])
    # C6: weighted BCE higher in the mean and in both tasks; C7: AUC 0.05 apart; C8: no AP columns.
    _table(run, "C6", [
        {"model": "BCE", "A AUC": 0.9, "A IoU": 0.1, "B AUC": 0.8, "B IoU": 0.2, "mean AUC": 0.85, "mean IoU": 0.15},
        {"model": "Weighted BCE", "A AUC": 0.8, "A IoU": 0.2, "B AUC": 0.8, "B IoU": 0.3, "mean AUC": 0.80,
         "mean IoU": 0.25},
    ])


EXPECTED = {
    "G1": DIRECTION_HOLDS, "G2": REPRODUCED, "G3": REPRODUCED, "G4": DIRECTION_HOLDS, "G5": REPRODUCED,
    "G6": REPRODUCED, "G7": REPRODUCED, "G8": NOT_REPRODUCED, "G9": REPRODUCED, "C1": DIRECTION_HOLDS,
    "C2": NOT_RUNNABLE, "C3": DIRECTION_HOLDS, "C4": DIRECTION_HOLDS, "C5": NOT_RUNNABLE, "C6": REPRODUCED,
    "C7": NOT_REPRODUCED, "C8": NOT_RUNNABLE,
}


def _verdicts(page: str) -> dict[str, str]:
    """Claim id -> verdict cell of the page's tables."""
    return dict(re.findall(r"^\| (\w+) \|.*\| \*\*([a-z ]+)\*\*[^|]* \| [^|]+ \|$", page, flags=re.M))


def test_fake_run_gives_the_known_verdicts(tmp_path: Path) -> None:
    _fake_run(tmp_path)
    assert set(EXPECTED) == set(BY_ID)
    outcomes = {claim.id: evaluate_claim(claim, tmp_path) for claim in CLAIMS}
    assert {k: o.verdict for k, o in outcomes.items()} == EXPECTED
    assert outcomes["G1"].note == outcomes["C3"].note == "capped: the phantom profile's data are not the paper's"
    assert outcomes["G9"].profile == "paper" and outcomes["G9"].note == ""
    assert outcomes["G9"].value == "positive +0.120, negative +0.040"
    assert outcomes["G2"].value == "latentshift-max 0.32 > guided 0.27 > grad 0.22 > integrated 0.12"
    assert outcomes["C2"].note == "the notebook failed"
    assert outcomes["C5"].note == "the notebook was not run"
    assert outcomes["C8"].note == "table3_bce_vs_weighted.csv: column 'mean AP' missing"
    assert outcomes["C7"].value == "mean AUC: BCE 0.850, W. BCE 0.800 (|Δ| 0.050)"


def test_table1_claims_read_the_first_classifier_of_several(tmp_path: Path) -> None:
    """Under the paper profile Table 1 has a block per classifier: G1 and G2 quote XRV-all's
    numbers, so they read the first block only (here the others would flip both verdicts)."""
    _fake_run(tmp_path)
    first = pd.read_csv(tmp_path / BY_ID["G1"].csv)
    other = first.assign(mean=first["mean"].where(first["method"] != "latentshift-max", 0.0) + 0.5)
    both = pd.concat([first.assign(classifier="XRV-all"), other.assign(classifier="JF Healthcare")])
    both[["classifier", *first.columns]].to_csv(tmp_path / BY_ID["G1"].csv, index=False)
    for claim_id in ("G1", "G2"):
        outcome = evaluate_claim(BY_ID[claim_id], tmp_path)
        assert outcome.verdict == EXPECTED[claim_id], claim_id
    ranked = "latentshift-max 0.32 > guided 0.27 > grad 0.22 > integrated 0.12"
    assert evaluate_claim(BY_ID["G2"], tmp_path).value == ranked


def test_page_lists_every_claim_with_its_verdict_rule_and_notebook(tmp_path: Path) -> None:
    _fake_run(tmp_path)
    page = scorecard_page(tmp_path)
    assert page.startswith("# Scorecard\n")
    assert _verdicts(page) == EXPECTED
    for title in PAPERS.values():
        assert f"\n## {title}\n" in page
    for claim in CLAIMS:
        assert f"{{doc}}`{claim.notebook} <../notebooks/{claim.notebook}>`" in page
        assert f"- **{claim.id}** ({claim.notebook}/{claim.table}.csv): {claim.rule}" in page
    assert "Profiles of this run: paper, phantom." in page
    assert "7 reproduced, 5 direction holds, 2 not reproduced, 3 not runnable here" in page
    assert "| mean AUC: BCE 0.850, W. BCE 0.800 (\\|Δ\\| 0.050) |" in page  # table cells escape "|"
    # a notebook the book leaves out is named, not linked (Sphinx would reject the link)
    partial = scorecard_page(tmp_path, book_notebooks=["14_gs_table1_iou"])
    assert "{doc}`14_gs_table1_iou <../notebooks/14_gs_table1_iou>`" in partial
    assert "| `24_ci_weighted_bce` |" in partial and "{doc}`24_ci_weighted_bce" not in partial


def test_skipped_notebook_and_missing_table_are_not_runnable(tmp_path: Path) -> None:
    claim = BY_ID["C1"]
    source = nbformat.read(REPO / "notebooks" / f"{claim.notebook}.ipynb", as_version=4)
    (tmp_path / "notebooks").mkdir()
    nbformat.write(source, tmp_path / "notebooks" / f"{claim.notebook}.ipynb")  # as skip_notebook saves it
    outcome = evaluate_claim(claim, tmp_path)
    assert outcome.verdict == NOT_RUNNABLE and outcome.profile is None
    supported = ", ".join(source.metadata["chexp"]["profiles"])  # phantom, cohen, paper
    assert outcome.note == f"the notebook was skipped for this profile (it supports {supported})"
    _executed(tmp_path, claim.notebook, "cohen")
    outcome = evaluate_claim(claim, tmp_path)
    assert (outcome.verdict, outcome.profile) == (NOT_RUNNABLE, "cohen")
    assert outcome.note == "fig1_redundancy_summary.csv was not written"


def test_a_notebook_stopped_for_data_is_not_called_skipped_for_its_profile(tmp_path: Path) -> None:
    """An offline build saves 16's page through ``unavailable_notebook``: the scorecard must say a
    file was missing, not that the phantom profile is unsupported (16 supports it)."""
    claim = BY_ID["G7"]
    source = REPO / "notebooks" / f"{claim.notebook}.ipynb"
    unavailable_notebook(source, tmp_path, "could not download trial_record.json.gz")
    outcome = evaluate_claim(claim, tmp_path)
    assert (outcome.verdict, outcome.profile) == (NOT_RUNNABLE, None)
    assert outcome.note.startswith("the notebook stopped: a file it needs could not be downloaded")
    skip_notebook(source, tmp_path, "paper", ("phantom", "cohen"))
    assert evaluate_claim(claim, tmp_path).note.startswith("the notebook was skipped for this profile")


@pytest.mark.parametrize(
    ("claim_id", "rows", "verdict"),
    [
        ("C1", [{"method": "IBA", "weaker side": 0.1}, {"method": "Inverse IBA", "weaker side": 0.2}], REPRODUCED),
        ("C1", [{"method": "IBA", "weaker side": 0.2}, {"method": "Inverse IBA", "weaker side": 0.1}], NOT_REPRODUCED),
        ("C2", [{"method": "IBA", "deletion AUC": 0.30}, {"method": "Inverse IBA", "deletion AUC": 0.20}], REPRODUCED),
        ("C2", [{"method": "IBA", "deletion AUC": 0.205}, {"method": "Inverse IBA", "deletion AUC": 0.2}],
         DIRECTION_HOLDS),
        ("C8", [{"model": "BCE", "mean AP": 0.24}, {"model": "Weighted BCE", "mean AP": 0.21}], DIRECTION_HOLDS),
        ("C8", [{"model": "BCE", "mean AP": 0.243}, {"model": "Weighted BCE", "mean AP": 0.236}], REPRODUCED),
        ("G3", [{"latent_size": 1, "mae": 1.0}, {"latent_size": 2, "mae": 2.0}], NOT_REPRODUCED),
        ("C6", [{"model": "BCE", "mean IoU": 0.1, "A IoU": 0.2, "B IoU": 0.2},
                {"model": "Weighted BCE", "mean IoU": 0.2, "A IoU": 0.1, "B IoU": 0.1}], DIRECTION_HOLDS),
    ],
)
def test_claim_rules(claim_id: str, rows: list[dict[str, object]], verdict: str) -> None:
    assert BY_ID[claim_id].evaluate(pd.DataFrame(rows)).verdict == verdict


def test_multilayer_examples_read_the_mean_row_of_an_indexed_table(tmp_path: Path) -> None:
    """Notebook 25 saves its table with the index (an unnamed first column)."""
    table = pd.DataFrame({"IBA": [0.2, 0.3], "Multi-layer IBA": [0.4, 0.3]}, index=["Mass (x)", "mean"])
    table.to_csv(tmp_path / "fig4_iou.csv")
    finding = BY_ID["C5"].evaluate(pd.read_csv(tmp_path / "fig4_iou.csv"))
    assert (finding.value, finding.verdict) == ("mean IoU: Multi-layer IBA 0.300, IBA 0.300", NOT_REPRODUCED)


def test_claims_point_at_real_notebooks_and_tables() -> None:
    """Each claim's notebook is in the book and saves the claim's table (``save_table(..., "<table>")``)."""
    book = set(toc_notebooks(REPO / "_toc.yml"))
    assert len(BY_ID) == len(CLAIMS)
    for claim in CLAIMS:
        assert isinstance(claim, Claim) and claim.paper in PAPERS
        assert claim.notebook in book, claim.id
        source = "\n".join(cell.source for cell in nbformat.read(REPO / "notebooks" / f"{claim.notebook}.ipynb",
                                                                   as_version=4).cells)
        assert re.search(rf"save_table\([^)]*\"{re.escape(claim.table)}\"", source), (claim.id, claim.table)
        assert claim.reproducible_on is None or set(claim.reproducible_on) <= set(PROFILES)
        assert claim.rule and claim.paper_value and claim.where


@pytest.mark.skipif(not (BEFORE_RUN / "outputs").is_dir(), reason="set CHEXP_PHANTOM_RUN to a phantom run folder")
def test_page_of_a_real_phantom_run(tmp_path: Path) -> None:
    """A local convenience: the page of a complete phantom run grades every claim without error."""
    run = tmp_path / "run"
    shutil.copytree(BEFORE_RUN / "notebooks", run / "notebooks")
    shutil.copytree(BEFORE_RUN / "outputs", run / "outputs", ignore=shutil.ignore_patterns("*.png", "*.svg", "*.gif",
                                                                                          "packet"))
    verdicts = _verdicts(scorecard_page(run))
    assert set(verdicts) == set(BY_ID) and set(verdicts.values()) <= set(VERDICTS)
    assert REPRODUCED in verdicts.values() and NOT_REPRODUCED in verdicts.values()


def test_scorecard_tables_are_full_width(tmp_path: Path) -> None:
    page = scorecard_page(tmp_path)
    assert page.count("```{container} full-width") == 2 and page.count("\n| id | claim |") == 2
