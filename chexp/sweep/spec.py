"""The sweep file (``SWEEP.yaml``): which notebooks, under which profiles, over which parameter grid.

.. code-block:: yaml

    name: seeds                    # optional (default: the file's stem)
    profiles: [phantom]            # optional (default: [phantom]); names of chexp.profiles.PROFILES
    device: cpu                    # optional (default: cpu)
    params: {integrated_steps: 20} # optional: fixed parameters of every notebook
    grid:                          # optional: every combination of these values is one run
      seed: [0, 1, 2, 3, 4]
    notebooks:                     # a list of stems, or stem -> {params, tables}
      14_gs_table1_iou:
        params: {n_samples: 6}     # fixed parameters of this notebook only
        tables: [table1_iou_auc]   # tables (CSV names) to summarize (default: every CSV it writes)
      15_gs_fig5_randomization: {}

A run is one notebook under one profile at one grid point. Every parameter named in ``params`` or
``grid`` must be assigned in the notebook's ``parameters`` cell (a typo would otherwise be injected
and ignored); ``profile``, ``device`` and ``output_dir`` are set by the sweep. A notebook is run
only under the listed profiles it supports (its metadata ``chexp.profiles``); one that supports
none of them is an error. :func:`load_sweep` checks all of this before anything runs.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataUnavailableError, InvalidParameterError, UnknownNameError

__all__ = ["SEED", "NotebookEntry", "SweepSpec", "notebook_parameters", "load_sweep", "parse_sweep"]

#: The grid parameter that summaries average over (runs that differ only in it form one group).
SEED = "seed"

#: Parameters the sweep sets itself.
RESERVED = ("profile", "device", "output_dir")
_TOP_KEYS = ("name", "description", "profiles", "device", "params", "grid", "notebooks")
_ENTRY_KEYS = ("params", "tables")


@dataclass(frozen=True)
class NotebookEntry:
    """One notebook of a sweep.

    Attributes:
        source: the notebook file.
        params: its fixed parameters (the sweep's ``params`` updated by its own).
        tables: names of the CSV tables to summarize (``None``: every CSV it writes).
        profiles: the sweep's profiles this notebook supports, in the sweep's order.
    """

    source: Path
    params: Mapping[str, Any]
    tables: tuple[str, ...] | None
    profiles: tuple[str, ...]

    @property
    def stem(self) -> str:
        return self.source.stem


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file (see the module docstring)."""

    name: str
    notebooks: tuple[NotebookEntry, ...]
    device: str = "cpu"
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    description: str = ""
    #: The sweep file it was read from (``None``: parsed from data).
    path: Path | None = None

    def points(self) -> Iterator[dict[str, Any]]:
        """Every grid point (``{name: value}``), in the grid's order (the last name varies fastest)."""
        names = list(self.grid)
        for values in itertools.product(*(self.grid[name] for name in names)):
            yield dict(zip(names, values, strict=True))

    @property
    def n_runs(self) -> int:
        """Runs of the sweep: notebooks x their profiles x grid points."""
        n_points = 1
        for values in self.grid.values():
            n_points *= len(values)
        return sum(len(entry.profiles) for entry in self.notebooks) * n_points


def notebook_parameters(source: Path) -> frozenset[str]:
    """Names assigned in the notebook's ``parameters`` cell (empty when it has none)."""
    import nbformat

    notebook = nbformat.read(source, as_version=4)
    names: set[str] = set()
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
    return frozenset(names)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidParameterError(f"{where}: expected a mapping (name: value), got {type(value).__name__}")
    return dict(value)


def _check_names(names: Mapping[str, Any], where: str) -> None:
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidParameterError(f"{where}: parameter name {name!r} is not a Python identifier")
        if name in RESERVED:
            raise InvalidParameterError(f"{where}: {name!r} is set by the sweep (the profiles, device and "
                                        "run folder); remove it")


def _unknown_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    extra = [key for key in data if key not in allowed]
    if extra:
        raise InvalidParameterError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} "
                                    f"{', '.join(map(repr, extra))}; allowed: {', '.join(allowed)}")


def _grid(value: Any) -> dict[str, tuple[Any, ...]]:
    grid = _mapping(value, "grid")
    _check_names(grid, "grid")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InvalidParameterError(f"grid: {name!r} must be a non-empty list of values, got {values!r}")
        if len({repr(v) for v in values}) != len(values):
            raise InvalidParameterError(f"grid: {name!r} lists a value twice: {values!r}")
    return {name: tuple(values) for name, values in grid.items()}


def _entries(value: Any) -> dict[str, dict[str, Any]]:
    """``notebooks:`` as stem -> {params, tables}."""
    if isinstance(value, list) and value and all(isinstance(stem, str) for stem in value):
        return {stem: {} for stem in value}
    if isinstance(value, Mapping) and value:
        return {str(stem): _mapping(entry, f"notebooks: {stem}") for stem, entry in value.items()}
    raise InvalidParameterError("notebooks: expected a non-empty list of notebook names, or a mapping "
                                "name -> {params: ..., tables: [...]}")


def _tables(value: Any, stem: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise InvalidParameterError(f"notebooks: {stem}: tables must be a non-empty list of CSV names")
    return tuple(t.removesuffix(".csv") for t in value)


def _entry(stem: str, data: Mapping[str, Any], available: Mapping[str, Path], common: Mapping[str, Any],
           grid: Mapping[str, Any], profiles: tuple[str, ...]) -> NotebookEntry:
    from ..reproduce import notebook_profiles

    if stem.removesuffix(".ipynb") not in available:
        raise UnknownNameError(stem, available, "notebook")
    source = available[stem.removesuffix(".ipynb")]
    _unknown_keys(data, _ENTRY_KEYS, f"notebooks: {stem}")
    own = _mapping(data.get("params"), f"notebooks: {stem}: params")
    _check_names(own, f"notebooks: {stem}: params")
    params = {**common, **own}
    declared = notebook_parameters(source)
    unknown = [name for name in [*params, *grid] if name not in declared]
    if unknown:
        raise InvalidParameterError(
            f"notebooks: {stem}: no parameter {', '.join(map(repr, dict.fromkeys(unknown)))} in its parameters "
            f"cell (it has {', '.join(sorted(declared)) or 'none'})")
    clash = [name for name in params if name in grid]
    if clash:
        raise InvalidParameterError(f"notebooks: {stem}: {', '.join(map(repr, clash))} is both fixed and in the grid")
    supported = notebook_profiles(source)
    usable = tuple(p for p in profiles if supported is None or p in supported)
    if not usable:
        raise InvalidParameterError(f"notebooks: {stem} supports the profiles {', '.join(supported or ())}, "
                                    f"none of the sweep's ({', '.join(profiles)})")
    return NotebookEntry(source, params, _tables(data.get("tables"), stem), usable)


def parse_sweep(data: Any, notebooks_dir: Path, name: str = "sweep") -> SweepSpec:
    """Validate the parsed YAML ``data`` of a sweep file against the notebooks of ``notebooks_dir``.

    Raises:
        InvalidParameterError: a malformed file: unknown keys, a bad grid (not a list, empty, a
            repeated value), a parameter the notebook does not have, a reserved name, a bad device,
            a notebook that supports none of the profiles.
        UnknownNameError: an unknown notebook or profile.
    """
    from ..cli.options import DEVICE_PATTERN
    from ..profiles import profile_class
    from ..reproduce import find_notebooks

    if not isinstance(data, Mapping):
        raise InvalidParameterError("the sweep file must be a mapping with at least 'notebooks:'")
    _unknown_keys(data, _TOP_KEYS, "sweep file")
    if "notebooks" not in data:
        raise InvalidParameterError("the sweep file names no notebooks (key 'notebooks:')")
    profiles = data.get("profiles", ["phantom"])
    if isinstance(profiles, str):
        profiles = [profiles]
    if not isinstance(profiles, list) or not profiles:
        raise InvalidParameterError("profiles: expected a non-empty list of profile names")
    for profile in profiles:
        profile_class(profile)
    device = str(data.get("device", "cpu"))
    if not DEVICE_PATTERN.match(device):
        raise InvalidParameterError(f"device {device!r} is not one of cpu, cuda, cuda:N, mps")
    common = _mapping(data.get("params"), "params")
    _check_names(common, "params")
    grid = _grid(data.get("grid"))
    available = {path.stem: path for path in find_notebooks(notebooks_dir)}
    entries = tuple(_entry(stem, entry, available, common, grid, tuple(profiles))
                    for stem, entry in _entries(data["notebooks"]).items())
    return SweepSpec(str(data.get("name", name)), entries, device, grid, str(data.get("description", "")))


def load_sweep(path: str | os.PathLike[str], notebooks_dir: Path | None = None) -> SweepSpec:
    """Read and validate a sweep file (:func:`parse_sweep`); notebooks from ``notebooks_dir``
    (default: :data:`chexp.paths.NOTEBOOKS_DIR`).

    ``path`` may also be the name of a sweep file shipped with chexp (``seeds``:
    ``sweeps/seeds.yaml`` of the checkout, or of the copy a wheel installs).

    Raises:
        DataUnavailableError: no such file.
        InvalidParameterError: not YAML, or not a valid sweep (:func:`parse_sweep`).
        UnknownNameError: an unknown notebook or profile.
    """
    import yaml

    from ..paths import NOTEBOOKS_DIR, SOURCE_ROOT

    path = Path(path)
    shipped = SOURCE_ROOT / "sweeps" / f"{path.name}.yaml"
    if not path.is_file() and path.suffix == "" and shipped.is_file():
        path = shipped
    if not path.is_file():
        raise DataUnavailableError(f"sweep file {path} does not exist (shipped sweeps: "
                                   f"{', '.join(p.stem for p in sorted(shipped.parent.glob('*.yaml'))) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise InvalidParameterError(f"sweep file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    spec = parse_sweep(data, Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR, path.stem)
    return dataclasses.replace(spec, path=path)
