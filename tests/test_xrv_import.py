"""torchxrayvision's ``warnings.filterwarnings("ignore")`` (run when ``torchxrayvision.models`` is
first imported) must not outlive chexp's import of it: chexp's own warnings stay visible."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import chexp

PACKAGE = Path(chexp.__file__).parent
HELPER = PACKAGE / "models" / "_xrv_import.py"

# In a fresh interpreter: the filters before and after a first import of torchxrayvision through
# chexp (its dependencies imported before, with the filters they add for their own warnings, so
# that only torchxrayvision's own lies in between), then a ChexpWarning, which must reach stderr.
PROBE = """
import warnings
import requests, torch, torchvision
before = list(warnings.filters)
{statement}
import sys
assert "torchxrayvision" in sys.modules
after = list(warnings.filters)
assert after == before, f"filters changed: added {{[f for f in after if f not in before]}}"
from chexp.errors import ChexpWarning
warnings.warn("still shown", ChexpWarning)
"""


@pytest.mark.parametrize("statement", [
    "import chexp.models.xrv",
    # lazy import sites (importing chexp.data.images alone does not import torchxrayvision)
    "import numpy; from chexp.data.images import center_crop_resize; "
    "center_crop_resize(numpy.zeros((1, 8, 8), numpy.float32), 4)",
    "from chexp.paths import weights_dir; weights_dir()",  # a lazy import site
])
def test_importing_torchxrayvision_through_chexp_keeps_the_warning_filters(statement: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "CHEXP_WEIGHTS_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE.parent), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", PROBE.format(statement=statement)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "ChexpWarning: still shown" in run.stderr


def _imports_torchxrayvision(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "torchxrayvision" for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torchxrayvision"


def test_chexp_imports_torchxrayvision_only_through_the_helper() -> None:
    sites = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != HELPER
             for node in ast.walk(ast.parse(path.read_text(), str(path))) if _imports_torchxrayvision(node)]
    assert sites == []


def test_without_ignore_all_keeps_the_other_filters_a_block_adds() -> None:
    from chexp.models._xrv_import import IGNORE_ALL, without_ignore_all

    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("error", RuntimeWarning)
        before = list(warnings.filters)
        with without_ignore_all():
            warnings.simplefilter("always", UserWarning)
            warnings.filterwarnings("ignore")  # what torchxrayvision.models runs
            warnings.filterwarnings("ignore", "a message", DeprecationWarning, "some[.]module", 3, append=True)
        kept = list(warnings.filters)
    assert IGNORE_ALL not in kept
    assert kept[2:] == before
    assert kept[0] == ("always", None, UserWarning, None, 0)
    action, message, category, module, lineno = kept[1]
    assert (action, message.pattern, category, module.pattern, lineno) == (
        "ignore", "a message", DeprecationWarning, "some[.]module", 3)
