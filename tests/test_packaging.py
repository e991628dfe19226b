"""Packaging: environment.yml agrees with pyproject.toml; CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(3).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("chexp")]
    return dict(_split(r) for r in reqs)


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
    assert _environment() == _pyproject()


def test_ci_runs_the_readme_test_command_unchanged():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    test_command = commands[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in [line.strip() for line in ci]
    assert "CHEXP_REQUIRE_DATA=1" in "\n".join(ci)


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
