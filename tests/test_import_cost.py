"""What a notebook's first cells import: every chapter of the book starts a fresh kernel, so the
heavy libraries that the phantom chapters never use (torchxrayvision with torchvision, about 2.5 s;
scikit-learn, about 1 s) are imported where they are used, not when chexp's modules load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import chexp

ROOT = Path(chexp.__file__).parent.parent

# the modules the notebooks import before they compute anything (their import cells)
NOTEBOOK_IMPORTS = """
import sys
import chexp.profiles, chexp.methods, chexp.metrics, chexp.outputs, chexp.plotting
import chexp.experiments.iba_setup, chexp.experiments.samples, chexp.training, chexp.latentshift
import chexp.baselines, chexp.iba, chexp.data.images
print(" ".join(sorted(m for m in {modules} if m in sys.modules)))
"""

LAZY = ("torchxrayvision", "torchvision", "sklearn")


def _loaded(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_importing_chexp_modules_leaves_the_heavy_libraries_unloaded() -> None:
    assert _loaded(NOTEBOOK_IMPORTS.format(modules=LAZY)) == set()


@pytest.mark.parametrize(("call", "module"), [
    ("from chexp.metrics import roc_auc; roc_auc([0.1, 0.9], [0, 1])", "sklearn"),
    ("import torch; from chexp.metrics import GaussianBlur; GaussianBlur()(torch.zeros(1, 1, 32, 32))", "torchvision"),
    ("import numpy; from chexp.data.images import to_xrv_range; to_xrv_range(numpy.zeros((2, 2)), 255)",
     "torchxrayvision"),
])
def test_a_call_that_needs_a_heavy_library_imports_it(call: str, module: str) -> None:
    code = f"import sys\n{call}\nprint(' '.join(m for m in {LAZY} if m in sys.modules))"
    assert module in _loaded(code)
