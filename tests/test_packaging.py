"""Packaging: environment.yml agrees with pyproject.toml; CI runs the README's test command; the
wheel carries the notebooks, manifests and book sources; Colab's pinned packages satisfy the ranges."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name

#: Versions preinstalled on Google Colab (python 3.12): google-colab pins ipykernel, ipython,
#: notebook and tornado; the others are Colab's installed versions.
COLAB = {
    "ipykernel": "6.17.1",
    "ipython": "7.34.0",
    "notebook": "6.5.7",
    "tornado": "6.5.1",
    "jupyter-client": "6.1.12",
    "ipywidgets": "7.7.1",
    "pandas": "2.2.2",
    "numpy": "2.0.2",
}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(3).replace(" ", "")


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _pyproject(python: str | None = None) -> dict[str, str]:
    """Name -> specifier of the dependencies and extras, those whose marker holds on ``python``."""
    project = _project()
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if not r.startswith("chexp")]
    env = {"python_version": python} if python else None
    return {
        r.name.lower().replace("_", "-"): str(r.specifier).replace(" ", "")
        for r in reqs
        if r.marker is None or r.marker.evaluate(env)
    }


def _conda_python() -> str:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    return next(dep.split("=")[1] for dep in env["dependencies"] if isinstance(dep, str) and dep.startswith("python="))


def _environment() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    reqs: dict[str, str] = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or item.split("=")[0] in {"python", "pip"}:
                continue
            name, spec = _split(item)
            reqs[CONDA_NAMES.get(name, name)] = spec
    return reqs


def test_environment_yml_lists_the_same_packages_and_ranges_as_pyproject():
    deps = _pyproject(_conda_python())
    environment = _environment()
    # conda writes ranges without a space and in its own order
    assert {name: SpecifierSet(spec) for name, spec in environment.items()} == {
        name: SpecifierSet(spec) for name, spec in deps.items()
    }


def test_ci_runs_the_readme_test_command_unchanged():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    test_command = commands[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in [line.strip() for line in ci]
    assert "CHEXP_REQUIRE_DATA=1" in "\n".join(ci)


def test_ranges_admit_colabs_preinstalled_jupyter_packages():
    """pip keeps a package it finds installed when the range admits it: Colab's pins must."""
    deps = {name: SpecifierSet(spec) for name, spec in _pyproject("3.12").items()}
    refused = {name: str(deps[name]) for name, version in COLAB.items() if name in deps and version not in deps[name]}
    assert refused == {}
    assert {"ipykernel", "ipywidgets"} <= deps.keys()


def test_torch_range_admits_colab_and_make_pins_local_wheels():
    deps = _pyproject()
    assert deps["torch"].startswith(">=") and "<" not in deps["torch"]  # Colab's torch is kept
    pins = (REPO / "constraints.txt").read_text()
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()


def test_console_script_runs_the_cli_main():
    import importlib

    from chexp.cli import main

    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["chexp"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is main


def test_classifiers_name_every_python_from_requires_python_on():
    project = _project()
    minimum = Version(re.fullmatch(r">=\s*([0-9.]+)", project["requires-python"]).group(1))
    pattern = r"Programming Language :: Python :: 3\.(\d+)"
    minors = sorted(int(m.group(1)) for c in project["classifiers"] if (m := re.fullmatch(pattern, c)))
    assert minors[0] == minimum.minor and minimum.major == 3
    assert minors == list(range(minors[0], minors[-1] + 1))  # no gap
    assert minors[-1] >= 12  # Colab's Python
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (REPO / "LICENSE").read_text() and "Version 2.0" in (REPO / "LICENSE").read_text()
    assert {"Homepage", "Repository", "Issues"} <= project["urls"].keys()


def test_the_package_list_is_every_chexp_package_plus_the_sources():
    from setuptools import find_packages

    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = set(find_packages(str(REPO), include=["chexp", "chexp.*"]))
    assert {p for p in listed if not p.startswith("chexp._source")} == found, "add new packages to pyproject.toml"


def _built_wheel(out: Path) -> Path:
    """Build the wheel from a copy of the checkout's files (git's view: tracked and new, not ignored)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    src = out / "src"
    for name in filter(None, files):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((REPO / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, capture_output=True,
    )
    (wheel,) = out.glob("chexp-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    return zipfile.ZipFile(_built_wheel(tmp_path_factory.mktemp("wheel")))


def test_wheel_carries_notebooks_manifests_and_book_sources(wheel: zipfile.ZipFile):
    names = set(wheel.namelist())
    sources = {n.removeprefix("chexp/_source/") for n in names if n.startswith("chexp/_source/")}
    expected = {
        *(p.relative_to(REPO).as_posix() for p in (REPO / "notebooks").glob("*.ipynb")),
        *(p.relative_to(REPO).as_posix() for p in (REPO / "data_manifests").iterdir() if not p.name.startswith(".")),
        "_config.yml", "_toc.yml", "references.bib",
        *(p.relative_to(REPO).as_posix() for p in (REPO / "book").glob("*.md")),
        *(p.relative_to(REPO).as_posix() for p in (REPO / "book" / "_ext").glob("*.py")),
        *(p.relative_to(REPO).as_posix() for p in (REPO / "book" / "assets" / "chexp").iterdir()),
        *(p.relative_to(REPO).as_posix() for p in (REPO / "sweeps").glob("*.yaml")),
    }
    assert sources == expected  # nothing missing, nothing else from the repository root
    assert len([s for s in sources if s.startswith("notebooks/")]) >= 19
    assert {"chexp/paths.py", "chexp/colab.py", "chexp/cli/__init__.py"} <= names
    meta = Parser().parsestr(wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
    assert meta["License-Expression"] == "Apache-2.0"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(url.startswith("Repository, https://github.com/") for url in meta.get_all("Project-URL"))
    assert "Programming Language :: Python :: 3.10" in meta.get_all("Classifier")
