"""The Google Colab setup cell: the first cell of every notebook of ``notebooks/``.

On Colab (the runtime's kernel has imported ``google.colab``) the cell installs chexp with
``pip install "chexp @ git+<repository>@<branch>"``: a regular install into ``site-packages``,
which the running kernel sees at once (``importlib.invalidate_caches``; no restart), and no folder
named ``chexp`` appears in the working directory to shadow the package (an earlier
``git clone ... chexp`` does not either: the installed package is a regular package, which wins
over such a folder, and any ``chexp`` module imported from it before is dropped). pip runs with a
constraints file that pins the installed versions of Colab's torch, Jupyter and core packages
(:data:`KEEP`), so it changes none of them. On a machine with a GPU the cell says so. Anywhere
else (a local Jupyter, papermill, ``chexp reproduce``, CI) the cell does nothing. The cell is
tagged :data:`CELL_TAG` and ``remove-cell`` (the book does not show it).

The notebooks' JSON is updated by this module, never by hand::

    python -m chexp.colab            # insert or update the cell in notebooks/*.ipynb
    python -m chexp.colab --check    # exit status 1 when a notebook lacks the current cell

Both take notebook paths instead of the default folder. Updating is idempotent: a notebook that
already starts with the current cell is not rewritten.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .paths import NOTEBOOKS_DIR

__all__ = [
    "REPOSITORY",
    "BRANCH",
    "REQUIREMENT",
    "KEEP",
    "CELL_TAG",
    "cell_source",
    "colab_url",
    "has_current_cell",
    "update_notebook",
    "main",
]

#: The repository the notebooks are published from (also ``[project.urls]`` and ``_config.yml``).
REPOSITORY = "https://github.com/chexp-project/chexp"
#: The branch whose notebooks the book's and README's "Open in Colab" links open, and installed.
BRANCH = "main"
#: What the cell installs.
REQUIREMENT = f"chexp @ git+{REPOSITORY}@{BRANCH}"
#: Distributions whose installed versions pip must keep on Colab (google-colab pins the Jupyter
#: ones; a new torch or numpy under a running kernel breaks it).
KEEP = (
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "ipykernel",
    "ipython",
    "ipywidgets",
    "jupyter-client",
    "jupyter-core",
    "notebook",
    "tornado",
)
#: Tag of the cell (with ``remove-cell``, which hides it from the book).
CELL_TAG = "chexp-colab-setup"
CELL_ID = "chexp-colab-setup"

_TEMPLATE = '''\
# Google Colab: installs chexp into this runtime (no restart needed) and keeps Colab's torch and
# Jupyter packages as they are. Anywhere else (local Jupyter, papermill, CI) it does nothing.
import sys

if "google.colab" in sys.modules:
    import importlib
    import subprocess
    import tempfile
    from importlib import metadata

    names = {{(d.metadata["Name"] or "").lower().replace("_", "-"): d.version for d in metadata.distributions()}}
    if "chexp" not in names:
        print("installing chexp (about a minute) ...")
        keep = (
            {keep},
        )
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
            constraints.write("\\n".join(f"{{name}}=={{names[name]}}" for name in keep if name in names))
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--constraint", constraints.name]
        subprocess.run([*pip, "{requirement}"], check=True)
        importlib.invalidate_caches()
        for module in [name for name in sys.modules if name.partition(".")[0] == "chexp"]:
            del sys.modules[module]  # imported from a folder named chexp before the install
    import torch

    import chexp

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f"chexp {{chexp.__version__}} from {{chexp.__file__}}; GPU: {{gpu or 'none'}}")
    if gpu:
        print('Set device = "cuda" in the parameters cell below to use it.')
'''


def cell_source(requirement: str = REQUIREMENT) -> str:
    """The Python source of the setup cell, installing ``requirement`` (a pip requirement)."""
    names = ", ".join(f'"{name}"' for name in KEEP)
    keep = textwrap.fill(names, width=90, subsequent_indent=" " * 12, break_on_hyphens=False)
    return _TEMPLATE.format(keep=keep, requirement=requirement).rstrip("\n")


def colab_url(notebook: str | Path) -> str:
    """The "Open in Colab" address of ``notebooks/<name>.ipynb`` on :data:`BRANCH` of :data:`REPOSITORY`."""
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{BRANCH}/notebooks/{Path(notebook).name}"


def _is_setup_cell(cell: Any) -> bool:
    return CELL_TAG in cell.get("metadata", {}).get("tags", [])


def has_current_cell(notebook: Any, requirement: str = REQUIREMENT) -> bool:
    """Whether ``notebook`` (an ``nbformat`` notebook) starts with the current setup cell, and only once."""
    cells = notebook.cells
    return (
        bool(cells)
        and _is_setup_cell(cells[0])
        and cells[0].cell_type == "code"
        and cells[0].source == cell_source(requirement)
        and sum(_is_setup_cell(cell) for cell in cells) == 1
    )


def update_notebook(path: str | Path, requirement: str = REQUIREMENT) -> bool:
    """Put the current setup cell first in the notebook at ``path``; returns whether it changed.

    Older setup cells (found by :data:`CELL_TAG`) are removed; every other cell, its id and the
    notebook's metadata are kept. A notebook that already has the current cell is not rewritten.
    """
    import nbformat
    from nbformat.v4 import new_code_cell

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    if has_current_cell(notebook, requirement):
        return False
    old = [cell for cell in notebook.cells if _is_setup_cell(cell)]
    cell = new_code_cell(cell_source(requirement), metadata={"tags": [CELL_TAG, "remove-cell"]})
    cell["id"] = old[0].get("id", CELL_ID) if old else CELL_ID
    notebook.cells = [cell, *(c for c in notebook.cells if not _is_setup_cell(c))]
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chexp.colab [--check] [NOTEBOOK ...]``: insert/update (or check) the setup cell."""
    parser = argparse.ArgumentParser(prog="python -m chexp.colab", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help=f"notebooks to update (default: {NOTEBOOKS_DIR}/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit status 1 when a notebook lacks the current cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    if args.check:
        import nbformat

        stale = [path for path in paths if not has_current_cell(nbformat.read(path, as_version=4))]
        for path in stale:
            print(f"{path}: no current Colab setup cell (run python -m chexp.colab)")
        return 1 if stale else 0
    for path in paths:
        print(f"{path}: {'updated' if update_notebook(path) else 'current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
