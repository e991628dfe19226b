"""The Colab setup cell (chexp.colab), the "Open in Colab" links and where the sources are found."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from chexp import colab, paths

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_starts_with_the_current_colab_cell(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert colab.has_current_cell(notebook), f"run: python -m chexp.colab {path.relative_to(REPO)}"
    assert {"remove-cell", colab.CELL_TAG} <= set(notebook.cells[0].metadata["tags"])


def _toy(path: Path) -> Path:
    params = new_code_cell('profile = "phantom"', metadata={"tags": ["parameters"]})
    params["id"] = "params-1"
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), params, new_code_cell("x = 1")])
    notebook.metadata["chexp"] = {"profiles": ["phantom"]}
    nbformat.write(notebook, path)
    return path


def test_update_is_idempotent_and_keeps_the_other_cells(tmp_path: Path) -> None:
    path = _toy(tmp_path / "toy.ipynb")
    before = nbformat.read(path, as_version=4)
    assert colab.update_notebook(path) is True
    text = path.read_text()
    assert colab.update_notebook(path) is False and path.read_text() == text  # not rewritten
    after = nbformat.read(path, as_version=4)
    assert colab.has_current_cell(after)
    assert after.cells[1:] == before.cells and after.metadata["chexp"] == {"profiles": ["phantom"]}
    assert colab.main(["--check", str(path)]) == 0


def test_an_older_cell_is_replaced_in_place_of_being_added(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _toy(tmp_path / "toy.ipynb")
    colab.update_notebook(path, requirement="chexp @ git+https://example.invalid/old@v0")
    notebook = nbformat.read(path, as_version=4)
    assert not colab.has_current_cell(notebook) and colab.main(["--check", str(path)]) == 1
    assert "python -m chexp.colab" in capsys.readouterr().out
    old_id = notebook.cells[0].id
    assert colab.main([str(path)]) == 0
    notebook = nbformat.read(path, as_version=4)
    assert colab.has_current_cell(notebook) and notebook.cells[0].id == old_id
    assert sum(colab.CELL_TAG in c.metadata.get("tags", []) for c in notebook.cells) == 1
    assert [c.source for c in notebook.cells[1:]] == ["# Title", 'profile = "phantom"', "x = 1"]


def test_the_cell_does_nothing_outside_colab() -> None:
    code = (
        "import subprocess, sys\n"
        "subprocess.run = None  # any install attempt would fail\n"
        f"exec(compile({colab.cell_source()!r}, 'cell', 'exec'), {{}})\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] in {'chexp', 'torch'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"  # nothing imported, nothing installed


# On "Colab": google.colab imported, chexp not installed, a folder named chexp (a clone) in the working
# directory already imported as a namespace package. The stand-in pip "installs" chexp by putting the
# checkout on sys.path (where site-packages is), as a real install does, without a restart.
_COLAB_SESSION = """
import json, sys, types
from importlib import metadata

sys.modules["google.colab"] = types.ModuleType("google.colab")
installed = {"torch": "2.6.0+cu124", "ipykernel": "6.17.1", "jupyter_client": "6.1.12", "tornado": "6.5.1",
             "ipywidgets": "7.7.1", "scipy": "1.15.0"}
real_distributions = metadata.distributions
metadata.distributions = lambda: [types.SimpleNamespace(metadata={"Name": n}, version=v) for n, v in installed.items()]
import chexp as shadow  # the clone folder: a namespace package without chexp.models
assert not hasattr(shadow, "__version__")
calls = []

def pip(command, check):
    calls.append({"command": command, "constraints": open(command[command.index("--constraint") + 1]).read()})
    sys.path.append(CHECKOUT)
    metadata.distributions = real_distributions  # installed: the real environment again

import subprocess
subprocess.run = pip
exec(compile(CELL, "cell", "exec"), {})
import chexp.models
print(json.dumps({"calls": calls, "file": chexp.__file__, "models": chexp.models.__name__}))
"""


def test_on_colab_the_cell_installs_with_colabs_versions_pinned_and_no_restart(tmp_path: Path) -> None:
    (tmp_path / "chexp").mkdir()  # what `git clone ... chexp` leaves
    code = f"CHECKOUT = {str(REPO)!r}\nCELL = {colab.cell_source()!r}\n" + textwrap.dedent(_COLAB_SESSION)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert Path(result["file"]) == REPO / "chexp" / "__init__.py" and result["models"] == "chexp.models"
    (call,) = result["calls"]
    assert call["command"][1:] == ["-m", "pip", "install", "--quiet", "--constraint", call["command"][-2],
                                   colab.REQUIREMENT]
    assert call["command"][0] == sys.executable
    # every installed package of KEEP is pinned to its version, nothing else
    assert sorted(call["constraints"].splitlines()) == [
        "ipykernel==6.17.1", "ipywidgets==7.7.1", "jupyter-client==6.1.12", "torch==2.6.0+cu124", "tornado==6.5.1",
    ]
    assert lines[0] == "installing chexp (about a minute) ..." and lines[-2].endswith("GPU: none")


def test_colab_links_name_one_repository_and_branch() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Repository"] == colab.REPOSITORY
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["repository"]["url"] == colab.REPOSITORY and config["repository"]["branch"] == colab.BRANCH
    assert config["repository"]["path_to_book"] == ""  # notebooks/ sits at the book's root, as in git
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    readme = (REPO / "README.md").read_text()
    assert f"]({colab.colab_url('00_phantom_gallery.ipynb')})" in readme
    assert "colab-badge.svg" in readme.split("\n## ")[0]  # at the top
    assert colab.colab_url(NOTEBOOKS[0]) == (
        f"https://colab.research.google.com/github/{colab.REPOSITORY.split('github.com/')[1]}/blob/"
        f"{colab.BRANCH}/notebooks/{NOTEBOOKS[0].name}"
    )


def test_readme_documents_every_environment_variable_chexp_reads() -> None:
    readme = (REPO / "README.md").read_text()
    for name in ("CHEXP_CACHE_DIR", "CHEXP_DATA_DIR", "CHEXP_WEIGHTS_DIR", "CHEXP_PAPER_DATA", "CHEXP_NPM_CACHE"):
        assert f"| `{name}` |" in readme, name


def test_sources_are_the_checkouts_or_the_installed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.SOURCE_ROOT == REPO  # running from the checkout
    assert paths.MANIFEST_DIR == REPO / "data_manifests" and paths.NOTEBOOKS_DIR == REPO / "notebooks"
    installed = tmp_path / "site-packages" / "chexp"
    (installed / paths.PACKAGED_SOURCE / "notebooks").mkdir(parents=True)
    monkeypatch.setattr(paths.resources, "files", lambda package: installed if package == "chexp" else None)
    assert paths.source_root() == installed / "_source"
