"""Every notebook that supports the ``paper`` profile runs under it, at smoke size, on the
paper-profile plumbing fixture (phantom images in the NIH/RSNA/SIIM layouts, randomly initialised
weights under torchxrayvision's file names; :mod:`chexp.cohen.paper_fixture`): the real loaders,
manifests and notebooks, offline. It proves plumbing, not numbers.

Each notebook runs alone (``chexp reproduce --profile paper --only <stem> --no-build``) so that
its wall and CPU seconds are measured, when its test asks for it (``-k 18_gs`` runs one); each
row of the table "notebook | ok | wall s | CPU s" is printed as its notebook ends and the whole
table at the end (``pytest -s``). A notebook is covered as soon as its metadata lists ``paper``.

The default run (CI) takes :data:`DEFAULT_SET`: one notebook per plumbing path (XRV-all with the
ResNetAE101 on an NIH example; balanced draws over NIH PNGs and RSNA / SIIM DICOMs; the galleries'
pools; CheXplain-IBA's NIH box images with IBA statistics from the NIH training manifest, dense
block 3 and blocks 1-3), since all of them at full model size take about 45 CPU-minutes (see
book/paper_data.md). ``CHEXP_PAPER_FIXTURE_ALL=1`` runs every ``paper`` notebook; the JF
Healthcare loader is covered by tests/test_paper_profile.py either way.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import nbformat
import pytest

from chexp.cohen.paper_fixture import LABEL, write_paper_fixture
from chexp.models.xrv import FIXTURE_NOTE
from chexp.reproduce import NotebookRun, find_notebooks, notebook_profiles, reproduce

REPO = Path(__file__).resolve().parents[1]
#: per-task and balanced-draw sizes of the smoke run (the fixture holds exactly what they read)
N_SAMPLES, N_DRAW, SEED = 1, 12, 0
#: smoke parameters given to every notebook (each uses those it knows): one dataset per task
#: (NIH Mass, RSNA Lung Opacity, SIIM Pneumothorax), the smallest counts and steps
SMOKE = {
    "n_samples": N_SAMPLES, "seed": SEED, "n_auc": N_DRAW, "kit_pool": N_DRAW, "fp_pool": N_DRAW,
    "n_pool": N_SAMPLES, "tasks": ["Mass", "Lung Opacity", "Pneumothorax"], "kit_tasks": ["Mass"],
    "integrated_steps": 2, "n_frames": 3, "n_curve": 5, "n_points": 3, "n_tp_fp": 1, "frames_shown": 2,
}
#: notebook -> parameters of its own: Appendix K's draw without a task is n_samples images (the
#: draw size); Fig. 4 explains with the JF Healthcare model (512 x 512 input; it predicts Effusion,
#: not Mass, Lung Opacity or Pneumothorax, so the other notebooks' tasks leave it out)
OWN = {"19_gs_appK_reconstruction": {"n_samples": N_DRAW},
       # App. C: the threshold rule (Newton / secant) and one stepped rule (accelerating steps). Random
       # weights never meet the stop rules, so each constant-step rule and sequential walk (step 10 to
       # |lambda| 1000) would decode all 100-200 grid points per side: the six rules are over 30 CPU-min
       "18_gs_appC_lambda_search": {"rules": ["paper", "latentshift-0.0.6"]},
       "13_gs_fig4_maps": {"target": "Effusion", "classifiers": ["JF Healthcare"]},
       # CheXplain-IBA: XRV-all names, IBA statistics from the fixture's first N_DRAW NIH training images
       **{stem: {"tasks": ["Mass"], "n_statistics": 8, "iba_steps": 2, "ig_steps": 2, "curve_points": 5,
                 "sensitivity_points": 3, "sensitivity_masks": 2, "n_eval": 8, "betas": [3.0]}
          for stem in ("20_ci_inverse_iba", "21_ci_insertion_deletion", "22_ci_regression_iba",
                       "23_ci_localization", "24_ci_weighted_bce", "25_ci_multilayer_iba",
                       "26_ci_severity_correlation")},
       "23_ci_localization": {"tasks": ["Mass"], "n_statistics": 8, "iba_steps": 2, "ig_steps": 2,
                              "methods": ["Gradients", "IBA", "Multi-layer IBA"]}}
#: notebooks whose ``paper`` run uses the Cohen/BrixIA stand-in (models the paper trained itself):
#: they read the Cohen images and chexp's cohen models, not the fixture
STAND_IN = ("22_ci_regression_iba", "24_ci_weighted_bce", "26_ci_severity_correlation")
#: the notebooks of this branch that support ``paper``; more (20-26) join when their metadata says so
EXPECTED = {"10_gs_fig1_latent_shift", "12_gs_fig3_lambda_curves", "13_gs_fig4_maps", "14_gs_table1_iou",
            "15_gs_fig5_randomization", "16_gs_fig6_reader_study", "17_gs_appB_reductions",
            "18_gs_appC_lambda_search", "19_gs_appK_reconstruction", "41_gs_appG_robustness",
            "42_gs_appIJ_galleries"}
ALL_PAPER = [path.stem for path in find_notebooks(REPO / "notebooks")
             if "paper" in (notebook_profiles(path) or ("paper",))]
#: what the default run covers (see the module docstring)
DEFAULT_SET = ("10_gs_fig1_latent_shift", "19_gs_appK_reconstruction", "42_gs_appIJ_galleries", "23_ci_localization")
PAPER = ALL_PAPER if os.environ.get("CHEXP_PAPER_FIXTURE_ALL") == "1" else [s for s in ALL_PAPER if s in DEFAULT_SET]


def _shared_data_dir() -> Path:
    env = os.environ.get("CHEXP_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: header of the per-notebook table the run prints (``pytest -s``)
HEADER = f"{'notebook':34s} {'ok':5s} {'wall s':>7s} {'cpu s':>7s}  error"


def _line(stem: str, notebook_run: NotebookRun, wall: float, cpu: float) -> str:
    """One row of the table: ``ok`` is True when the notebook ran to the end and was not skipped."""
    ok = notebook_run.ok and not notebook_run.skipped
    return f"{stem:34s} {str(ok):5s} {wall:7.1f} {cpu:7.1f}  {notebook_run.error}"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The fixture written once; a function running one ``paper`` notebook alone on it (when its
    test asks, so that ``-k`` picks notebooks) and returning ``(NotebookRun, wall seconds, CPU
    seconds of the kernel)``. Each row of the table is printed as its notebook ends, the whole
    table at the end (``pytest -s``)."""
    folder = tmp_path_factory.mktemp("paper_fixture")
    start = time.perf_counter()
    paths = write_paper_fixture(folder, N_SAMPLES, N_DRAW, SEED)
    written = time.perf_counter() - start
    out, runs = folder / "run", {}
    print(f"\nfixture written in {written:.1f} s\n{HEADER}", flush=True)

    def run_one(stem: str) -> tuple[NotebookRun, float, float]:
        cpu, start = _cpu_children(), time.perf_counter()
        result = reproduce(profile="paper", only=stem, params={**SMOKE, **OWN.get(stem, {})}, output_dir=out,
                           build=False, progress=False)
        runs[stem] = (result.runs[0], time.perf_counter() - start, _cpu_children() - cpu)
        print(f"\n{_line(stem, *runs[stem])}", flush=True)  # as it ends: a cut-off run keeps its rows
        return runs[stem]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHEXP_PAPER_DATA", str(paths["data"]))
        mp.setenv("CHEXP_WEIGHTS_DIR", str(paths["weights"]))
        for proxy in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            mp.setenv(proxy, "http://127.0.0.1:9")  # nothing real is downloaded
        if (_shared_data_dir() / "gifsplanation").is_dir():  # the reader study's released ratings
            mp.setenv("CHEXP_DATA_DIR", str(_shared_data_dir()))
        yield run_one
    print("\n".join(["", f"fixture written in {written:.1f} s", HEADER, *(_line(s, *r) for s, r in runs.items())]))


def test_paper_notebooks_are_those_expected():
    assert EXPECTED <= set(ALL_PAPER)
    assert all(stem.startswith("2") for stem in set(ALL_PAPER) - EXPECTED)  # CheXplain-IBA's
    assert {stem[:2] for stem in ALL_PAPER if stem.startswith("2")} == {f"2{k}" for k in range(7)}  # all 7
    assert set(DEFAULT_SET) <= set(ALL_PAPER)
    # the stand-in notebooks are those that call it
    calls = {stem for stem in ALL_PAPER if "brixia_stand_in(" in (REPO / "notebooks" / f"{stem}.ipynb").read_text()}
    assert calls == set(STAND_IN)


@pytest.mark.slow
@pytest.mark.parametrize("stem", PAPER)
def test_notebook_runs_on_the_fixture_and_says_so(run, stem):
    notebook_run, _, _ = run(stem)
    if stem == "16_gs_fig6_reader_study" and notebook_run.skipped and "gifsplanation" in notebook_run.error \
            and os.environ.get("CHEXP_REQUIRE_DATA") != "1":
        pytest.skip(f"the released reader-study ratings are not available offline: {notebook_run.error}")
    assert notebook_run.ok and not notebook_run.skipped, f"{stem}: {notebook_run.error}"
    page = nbformat.read(notebook_run.path, as_version=4)
    text = "\n".join(str(output.get("text", "")) + str(output.get("data", {}).get("text/markdown", ""))
                     for cell in page.cells if cell.cell_type == "code" for output in cell.get("outputs", []))
    if stem in STAND_IN:  # no fixture file is read: the page says what it ran on instead
        assert "Stand-in under the paper profile" in text, f"{stem}: the page does not say it ran on the stand-in"
        assert FIXTURE_NOTE not in text
    else:
        assert FIXTURE_NOTE in text and LABEL in text, f"{stem}: the page does not say it was made with the fixture"
