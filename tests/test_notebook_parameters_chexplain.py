"""Defaults of the CheXplain-IBA notebooks that the released code fixes (read from their
``parameters`` cell, without running them)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _parameters(stem: str) -> dict[str, object]:
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}


def test_inverse_iba_beta_sweep_includes_the_released_evaluation_beta():
    # CheXplain-IBA's evaluation/gen_attribution_map.py: beta 10, reverse_mask_beta 30 (Inverse IBA)
    betas = _parameters("20_ci_inverse_iba")["betas"]
    assert 10.0 in betas and 30.0 in betas, betas
