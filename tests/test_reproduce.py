"""Tests of chexp.reproduce: papermill runs, failure handling, parameters, kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from chexp.book import toc_notebooks, unexecuted_notebooks
from chexp.errors import InvalidParameterError, UnknownNameError
from chexp.profiles import PROFILES
from chexp.reproduce import (
    find_notebooks,
    main,
    notebook_profiles,
    parse_param,
    reproduce,
    this_python_kernel,
)

REPO = Path(__file__).resolve().parents[1]

PARAMETERS = 'profile = "unset"\ndevice = "unset"\noutput_dir = "unset"\nn = 1\nname = "default"'
GOOD_BODY = """import json, pathlib
import chexp  # the kernel must see the package under test
record = {"profile": profile, "device": device, "n": n, "name": name, "output_dir": output_dir}
pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)
(pathlib.Path(output_dir) / "params.json").write_text(json.dumps(record))
print(json.dumps(record))
from chexp.progress import tqdm
for _ in tqdm(range(3), desc="inner-bar"):  # the private kernel disables tqdm: no bar in the page
    pass"""


def _write(path: Path, *cells: nbformat.NotebookNode) -> None:
    notebook = new_notebook(cells=list(cells))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


@pytest.fixture()
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "nbs"
    folder.mkdir()
    _write(
        folder / "a_good.ipynb",
        new_markdown_cell("# good"),
        new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        new_code_cell(GOOD_BODY),
    )
    _write(
        folder / "b_broken.ipynb",
        new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        new_code_cell("raise RuntimeError('deliberate failure in the broken notebook')"),
        new_code_cell("print('never reached')"),
    )
    return folder


def _stdout(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )


def test_runs_all_reports_failure_and_injects_parameters(notebooks: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # An older success of the broken notebook must not survive a failed rerun.
    (run_dir / "notebooks").mkdir(parents=True)
    (run_dir / "notebooks" / "b_broken.ipynb").write_text("{}")

    result = reproduce(
        profile="phantom",
        device="cpu",
        params={"n": 7, "name": "x-ray"},
        output_dir=run_dir,
        build=False,
        notebooks_dir=notebooks,
        progress=False,
    )

    assert [run.name for run in result.runs] == ["a_good", "b_broken"]
    assert result.exit_code == 1
    assert [run.name for run in result.failed] == ["b_broken"]
    assert "deliberate failure" in result.failed[0].error
    assert "b_broken" in result.summary()

    good = nbformat.read(run_dir / "notebooks" / "a_good.ipynb", as_version=4)
    expected = {
        "profile": "phantom",
        "device": "cpu",
        "n": 7,
        "name": "x-ray",
        "output_dir": str((run_dir / "outputs" / "a_good").resolve()),
    }
    assert json.loads(_stdout(good).strip()) == expected
    outputs = json.dumps([cell.get("outputs", []) for cell in good.cells])
    assert "inner-bar" not in outputs  # no progress bar saved into the notebook
    assert json.loads((run_dir / "outputs" / "a_good" / "params.json").read_text()) == expected
    tags = [cell.metadata.get("tags", []) for cell in good.cells]
    assert ["parameters", "remove-cell"] in tags
    assert ["injected-parameters", "remove-cell"] in tags
    assert good.metadata["kernelspec"]["name"] == "python3"  # the source's, not the private one

    # The broken notebook: no result in notebooks/, its traceback kept in failed/.
    assert not (run_dir / "notebooks" / "b_broken.ipynb").exists()
    broken = nbformat.read(run_dir / "failed" / "b_broken.ipynb", as_version=4)
    errors = [o for c in broken.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"
    assert "never reached" not in _stdout(broken)

    # No temporary or half-written file anywhere.
    leftovers = [p for p in run_dir.rglob("*") if "partial" in p.name or p.name.startswith(".")]
    assert leftovers == []
    assert sorted(p.name for p in (run_dir / "notebooks").iterdir()) == ["a_good.ipynb"]
    assert "JUPYTER_PATH" not in os.environ or "chexp-kernel-" not in os.environ["JUPYTER_PATH"]


def test_cli_exit_code_names_failure_and_parallel_runs_stay_apart(notebooks: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = {}
    for seed in (1, 2):
        command = [
            sys.executable, "-m", "chexp.reproduce", "--notebooks-dir", str(notebooks),
            "--output-dir", str(tmp_path / f"run{seed}"), "--no-build",
            "-p", f"n={seed}", "-p", f"name=run {seed}",
        ]
        procs[seed] = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    for seed, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert "failed notebooks: b_broken" in out
        record = json.loads((tmp_path / f"run{seed}" / "outputs" / "a_good" / "params.json").read_text())
        assert (record["n"], record["name"]) == (seed, f"run {seed}")


def test_parse_param() -> None:
    assert parse_param("n_samples=32") == ("n_samples", 32)
    assert parse_param("lr=1e-3") == ("lr", 0.001)
    assert parse_param("models=['a', 'b']") == ("models", ["a", "b"])
    assert parse_param("flag=True") == ("flag", True)
    assert parse_param("model=densenet121-res224-all") == ("model", "densenet121-res224-all")
    assert parse_param("name=") == ("name", "")
    assert parse_param("expr=1+") == ("expr", "1+")
    for bad in ("novalue", "=3", "not-an-id=3"):
        with pytest.raises(ValueError):
            parse_param(bad)


def test_bad_arguments_fail_before_running(notebooks: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "never"
    common = {"output_dir": run_dir, "build": False, "notebooks_dir": notebooks, "progress": False}
    with pytest.raises(UnknownNameError, match="profile"):
        reproduce(profile="imagenet", **common)
    with pytest.raises(ValueError, match="--output-dir"):
        reproduce(params={"output_dir": "x"}, **common)
    with pytest.raises(ValueError, match="device"):
        reproduce(device="gpu0", **common)
    with pytest.raises(UnknownNameError, match="a_good"):
        reproduce(only="zz_missing", **common)
    with pytest.raises(UnknownNameError, match="Jupyter kernel"):
        reproduce(kernel_name="no-such-kernel-xyz", **common)
    assert not run_dir.exists()
    assert main(["--profile", "imagenet"]) == 2  # chexp.cli prints the ChexpError in one line


def test_find_notebooks_sorted_and_filtered(notebooks: Path) -> None:
    assert [p.name for p in find_notebooks(notebooks)] == ["a_good.ipynb", "b_broken.ipynb"]
    assert [p.name for p in find_notebooks(notebooks, "b_*")] == ["b_broken.ipynb"]
    assert [p.name for p in find_notebooks(notebooks, ["a_good.ipynb"])] == ["a_good.ipynb"]


def test_private_kernel_is_this_interpreter() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    before = os.environ.get("JUPYTER_PATH")
    with this_python_kernel((REPO,)) as name:
        spec = KernelSpecManager().get_kernel_spec(name)
        assert spec.argv[0] == sys.executable
        assert spec.env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)
    assert os.environ.get("JUPYTER_PATH") == before


def test_repository_notebooks_have_parameters_cell() -> None:
    required = {"profile", "device", "n_samples", "seed", "output_dir"}
    for path in find_notebooks(REPO / "notebooks"):
        notebook = nbformat.read(path, as_version=4)
        tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        names = {line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line}
        assert required <= names, f"{path.name}: parameters cell lacks {sorted(required - names)}"
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
            f"{path.name}: source notebooks are committed without outputs"
        )


def test_tqdm_disable_switches_off_chexp_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    from chexp.progress import tqdm

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not tqdm(range(2), disable=False).disable
    assert tqdm(range(2), disable=True).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert tqdm(range(2), disable=False).disable  # explicit disable=False does not override it
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not tqdm(range(2)).disable


def test_notebook_for_other_profiles_is_skipped_with_a_page_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "nbs"
    folder.mkdir()
    notebook = new_notebook(cells=[
        new_markdown_cell("# Phantoms only"),
        new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        new_code_cell("raise RuntimeError('must not run')"),
        new_markdown_cell("Closing text."),
    ])
    notebook.metadata["chexp"] = {"profiles": ["phantom"]}
    nbformat.write(notebook, folder / "p_only.ipynb")
    run_dir = tmp_path / "run"
    (run_dir / "failed").mkdir(parents=True)
    (run_dir / "failed" / "p_only.ipynb").write_text("{}")  # an older failure does not survive

    result = reproduce(profile="cohen", device="cpu", output_dir=run_dir, build=False,
                       notebooks_dir=folder, progress=False)

    assert result.exit_code == 0
    [run] = result.runs
    assert run.ok and run.skipped and "phantom" in run.error
    assert "skipped" in result.summary()
    page = nbformat.read(run_dir / "notebooks" / "p_only.ipynb", as_version=4)
    assert [c.cell_type for c in page.cells] == ["markdown"] * 3
    assert "`cohen` profile" in page.cells[1].source and page.cells[2].source == "Closing text."
    assert not (run_dir / "failed" / "p_only.ipynb").exists()
    assert [p.name for p in (run_dir / "notebooks").iterdir()] == ["p_only.ipynb"]

    result = reproduce(profile="phantom", device="cpu", output_dir=run_dir, build=False,
                       notebooks_dir=folder, progress=False)
    assert not result.runs[0].skipped and "must not run" in result.runs[0].error


def _unsupported(profile: str) -> list[str]:
    """Stems of the repository's notebooks whose metadata does not list ``profile``."""
    return [path.stem for path in find_notebooks(REPO / "notebooks")
            if profile not in (notebook_profiles(path) or PROFILES)]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profile_skips_the_notebooks_that_do_not_list_it(profile: str, tmp_path: Path) -> None:
    """A notebook for every other profile is skipped under this one (a page with the note, exit
    0), and so is each repository notebook that does not list it."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    others = [name for name in PROFILES if name != profile]
    notebook = new_notebook(cells=[new_markdown_cell("# Elsewhere"),
                                   new_code_cell("raise RuntimeError('must not run')")])
    notebook.metadata["chexp"] = {"profiles": others}
    nbformat.write(notebook, folder / "elsewhere.ipynb")
    result = reproduce(profile=profile, output_dir=tmp_path / "run", build=False, notebooks_dir=folder, progress=False)
    [run] = result.runs
    assert result.exit_code == 0 and run.skipped and all(name in run.error for name in others)
    page = nbformat.read(run.path, as_version=4)
    assert f"`{profile}` profile" in page.cells[1].source

    stems = _unsupported(profile)
    if stems:
        result = reproduce(profile=profile, only=stems, output_dir=tmp_path / "repo", build=False, progress=False)
        assert [run.name for run in result.runs] == stems
        assert all(run.skipped for run in result.runs) and result.exit_code == 0, result.summary()


def test_repository_notebooks_declare_registered_profiles() -> None:
    declared = {path.stem: notebook_profiles(path) for path in find_notebooks(REPO / "notebooks")}
    assert all(profiles and set(profiles) <= set(PROFILES) for profiles in declared.values()), declared
    assert _unsupported("phantom") == []  # the offline default runs the whole book
    # every paper notebook runs under paper (CheXplain-IBA's too, issue 13), except the bottleneck
    # sweep (torchxrayvision publishes one autoencoder) and the pages whose ground truth is a phantom's
    assert set(_unsupported("paper")) == {"00_phantom_gallery", "11_gs_fig2_bottleneck", "30_add_change_in_mask",
                                          "31_add_shortcut", "40_gs_appD2_autoencoder_depth"}


def test_cli_paper_run_skips_unsupported_notebooks_with_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stems = _unsupported("paper")
    assert stems
    argv = ["--profile", "paper", "--no-build", "--output-dir", str(tmp_path / "run")]
    assert main(argv + [arg for stem in stems for arg in ("--only", stem)]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped: supports the phantom") == len(stems) and "FAILED" not in out


def test_profile_names_come_from_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newly registered profile is accepted (and skipped where not listed); a notebook that names
    an unregistered profile stops the run before anything is written."""
    from chexp.profiles import PhantomProfile

    class ToyProfile(PhantomProfile):
        name = "toy"

    monkeypatch.setitem(PROFILES, "toy", ToyProfile)
    folder = tmp_path / "nbs"
    folder.mkdir()
    notebook = new_notebook(cells=[new_markdown_cell("# Phantoms")])
    notebook.metadata["chexp"] = {"profiles": ["phantom"]}
    nbformat.write(notebook, folder / "a.ipynb")
    result = reproduce(profile="toy", output_dir=tmp_path / "run", build=False, notebooks_dir=folder, progress=False)
    assert result.runs[0].skipped

    notebook.metadata["chexp"] = {"profiles": ["phantom", "nih"]}
    nbformat.write(notebook, folder / "b.ipynb")
    with pytest.raises(UnknownNameError, match="nih"):
        reproduce(profile="phantom", output_dir=tmp_path / "never", build=False, notebooks_dir=folder, progress=False)
    assert not (tmp_path / "never").exists()


def test_only_run_leaves_the_book_unbuilt_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--only` without `--no-build`: the notebook's exit status counts; the book, which needs every
    chapter, is not built (and not attempted) when the run folder lacks the others."""
    stem = _unsupported("paper")[0]
    run_dir = tmp_path / "run"
    assert main(["--profile", "paper", "--only", stem, "--output-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "book not built:" in out and "run without --only" in out
    assert not (run_dir / ".book-src").exists() and not (run_dir / "html").exists()
    missing = unexecuted_notebooks(run_dir)
    assert stem not in missing and len(missing) == len(toc_notebooks(REPO / "_toc.yml")) - 1


OFFLINE_FETCH = """from chexp.data.remote import RemoteSource, fetch
# Port 9 (discard) on this machine refuses the connection: a download with no network.
fetch(RemoteSource("released-study", "http://127.0.0.1:9/study/", "public"), "ratings.csv", "0" * 64,
      progress=False)"""


def test_notebook_whose_download_fails_is_kept_with_a_note_and_exit_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook stopped by chexp's DataUnavailableError (here a real chexp.data.remote.fetch into
    an empty data folder, whose download fails) is skipped: its page keeps the text and says what to
    download, from where and where to put it; the run exits 0. Any other error still fails."""
    monkeypatch.setenv("CHEXP_DATA_DIR", str(tmp_path / "empty-cache"))  # the kernel inherits it
    folder = tmp_path / "nbs"
    folder.mkdir()
    _write(folder / "a_offline.ipynb", new_markdown_cell("# Needs a download"),
           new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}), new_code_cell(OFFLINE_FETCH),
           new_markdown_cell("Closing text."))
    _write(folder / "b_raises.ipynb", new_markdown_cell("# Raises it"),
           new_code_cell("from chexp.errors import DataUnavailableError\n"
                         "raise DataUnavailableError('put weights.pt at /somewhere')"))
    _write(folder / "c_other.ipynb", new_code_cell("raise FileNotFoundError('not chexp')"))
    run_dir = tmp_path / "run"

    result = reproduce(profile="phantom", output_dir=run_dir, build=False, notebooks_dir=folder, progress=False)

    offline, raises, other = result.runs
    assert offline.ok and offline.skipped and raises.ok and raises.skipped
    assert not other.ok and not other.skipped and result.exit_code == 1  # only c_other fails
    url = "http://127.0.0.1:9/study/ratings.csv"
    local = tmp_path / "empty-cache" / "released-study" / "ratings.csv"
    assert url in offline.error and str(local) in offline.error
    page = nbformat.read(run_dir / "notebooks" / "a_offline.ipynb", as_version=4)
    assert [c.cell_type for c in page.cells] == ["markdown"] * 3
    assert page.cells[1].source.startswith("```{warning}") and url in page.cells[1].source
    assert str(local) in page.cells[1].source and page.cells[2].source == "Closing text."
    assert not (run_dir / "failed" / "a_offline.ipynb").exists()
    assert "/somewhere" in nbformat.read(raises.path, as_version=4).cells[1].source
    summary = result.summary()
    assert "skipped notebooks (their pages say why): a_offline, b_raises" in summary
    assert f"skipped: data unavailable: could not download {url}" in summary
    assert sorted(p.name for p in (run_dir / "failed").iterdir()) == ["c_other.ipynb"]

    (folder / "c_other.ipynb").unlink()
    result = reproduce(profile="phantom", output_dir=run_dir, build=False, notebooks_dir=folder, progress=False)
    assert result.exit_code == 0 and [run.skipped for run in result.runs] == [True, True]


THREADS_BODY = """import json, os, pathlib
import torch
pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)
record = {"threads": torch.get_num_threads(), "wait": os.environ.get("OMP_WAIT_POLICY"),
          "page_dir": os.environ.get("CHEXP_PAGE_DIR"), "pid": os.getpid(), "n": n}
(pathlib.Path(output_dir) / "kernel.json").write_text(json.dumps(record))"""


def test_jobs_run_notebooks_side_by_side_with_the_kernels_thread_count(tmp_path: Path) -> None:
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name in ("a_one", "b_two", "c_three"):
        _write(folder / f"{name}.ipynb", new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
               new_code_cell(THREADS_BODY))
    _write(folder / "d_broken.ipynb", new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
           new_code_cell("raise RuntimeError('deliberate failure')"))

    def records(jobs: int) -> list[dict]:
        run = tmp_path / f"run{jobs}"
        result = reproduce(notebooks_dir=folder, output_dir=run, build=False, progress=False, jobs=jobs,
                           params={"n": 3})
        assert [r.name for r in result.runs] == ["a_one", "b_two", "c_three", "d_broken"]  # the sources' order
        assert [r.ok for r in result.runs] == [True, True, True, False] and result.exit_code == 1
        assert "deliberate failure" in result.runs[3].error
        assert (run / "failed" / "d_broken.ipynb").is_file()
        found = [json.loads((run / "outputs" / name / "kernel.json").read_text())
                 for name in ("a_one", "b_two", "c_three")]
        for record in found:
            assert record["n"] == 3 and record["page_dir"] == str((run / "notebooks").resolve())
        assert len({r["pid"] for r in found}) == 3  # a kernel per notebook
        return found

    alone, side_by_side = records(1), records(2)
    # the same number of torch threads as kernels started one at a time: the same sums
    assert {r["threads"] for r in side_by_side} == {r["threads"] for r in alone}
    assert {r["wait"] for r in alone} == {os.environ.get("OMP_WAIT_POLICY")}
    assert {r["wait"] for r in side_by_side} == {os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def test_jobs_are_checked_before_anything_runs(notebooks: Path, tmp_path: Path) -> None:
    for jobs, message in ((0, "jobs must be an integer >= 1"), (2.5, "jobs must be an integer"),
                          (True, "jobs must be an integer")):
        with pytest.raises(InvalidParameterError, match=message):
            reproduce(notebooks_dir=notebooks, output_dir=tmp_path / "x", build=False, jobs=jobs)
    with pytest.raises(InvalidParameterError, match="not both"):
        reproduce(notebooks_dir=notebooks, output_dir=tmp_path / "x", build=False, jobs=2, scheduler="local:2")
    assert not (tmp_path / "x" / "notebooks").exists()
