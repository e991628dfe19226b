"""Colab's install path, checked in a real virtual environment (by hand: it needs Colab's torch,
several GB from PyPI, so CI does not run it; ``tests/test_colab.py`` checks the cell's logic).

Prepare a Python 3.12 virtual environment with Colab's pinned versions first, for example::

    python3.12 -m venv /tmp/colab
    /tmp/colab/bin/pip install torch==2.6.0 torchvision==0.21.0 ipykernel==6.17.1 tornado==6.5.1 \\
        jupyter-client==6.1.12 ipywidgets==7.7.1 ipython==7.34.0 notebook==6.5.7

then::

    pip wheel --no-deps . -w dist
    python .ci/colab_check.py --python /tmp/colab/bin/python --requirement "chexp @ file://$PWD/dist/<wheel>"

It (1) records ``pip freeze``; (2) runs the notebooks' own setup cell (:func:`chexp.colab.cell_source`
with that requirement) in that Python with ``google.colab`` present, from a folder holding a
``chexp`` clone folder, as on Colab; (3) records ``pip freeze`` again and prints the versions of
:data:`chexp.colab.KEEP` before and after; (4) runs a notebook at smoke size with papermill on that
environment's kernel. Exit status 1 when a kept version changed or a step failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chexp import colab  # noqa: E402

# The cell runs as on Colab: `google.colab` imported, the cell's source executed in the kernel.
_SESSION = """
import sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")
exec(compile(CELL, "colab-setup-cell", "exec"), {})
import chexp.models
print("imported", chexp.__file__)
"""


def freeze(python: str) -> dict[str, str]:
    """``{normalized name: version}`` of every distribution in the environment of ``python``."""
    out = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(out.stdout)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the prepared environment's python")
    parser.add_argument("--requirement", required=True, help="what the cell installs (a pip requirement)")
    parser.add_argument("--notebook", default="12_gs_fig3_lambda_curves", help="notebook run at smoke size")
    parser.add_argument("--profile", default="phantom")
    args = parser.parse_args(argv)

    before = freeze(args.python)
    if "chexp" in before:
        parser.error(f"{args.python} already has chexp {before['chexp']}: start from Colab's environment")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "chexp").mkdir()  # what `git clone ... chexp` leaves beside the notebook
        code = f"CELL = {colab.cell_source(args.requirement)!r}\n{_SESSION}"
        start = time.perf_counter()
        cell = subprocess.run([args.python, "-c", code], cwd=work, capture_output=True, text=True)
        print(f"setup cell: exit {cell.returncode} in {time.perf_counter() - start:.0f} s")
        print(cell.stdout.strip())
        if cell.returncode:
            print(cell.stderr[-3000:])
            return 1
        after = freeze(args.python)
        print(f"\n{'package':16s} {'before':>14s} {'after':>14s}")
        changed = []
        for name in colab.KEEP:
            old, new = before.get(name, "-"), after.get(name, "-")
            print(f"{name:16s} {old:>14s} {new:>14s}{'  CHANGED' if old != new else ''}")
            if old != new and old != "-":
                changed.append(name)
        added = sorted(set(after) - set(before))
        print(f"\n{len(added)} distributions added; chexp {after.get('chexp')}; "
              f"{sum(before[n] != after.get(n) for n in before)} of {len(before)} present before changed: "
              + ", ".join(f"{n} {before[n]} -> {after.get(n)}" for n in before if before[n] != after.get(n)))

        start = time.perf_counter()
        chexp = str(Path(args.python).parent / "chexp")
        run = subprocess.run([chexp, "reproduce", "--profile", args.profile, "--only", args.notebook, "--no-build",
                              "--output-dir", str(work / "run")], cwd=work, capture_output=True, text=True)
        print(f"\n{args.notebook} under {args.profile} with this environment's kernel: exit {run.returncode} "
              f"in {time.perf_counter() - start:.0f} s")
        print(run.stdout.strip()[-2000:])
        if run.returncode:
            print(run.stderr[-3000:])
    return 1 if changed or run.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
