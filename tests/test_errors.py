"""chexp's errors: every error a user can trigger is a :class:`~chexp.errors.ChexpError`.

Three parts: an AST scan of ``chexp/`` (no ``raise`` of a bare built-in exception outside an
allow-list of internal-invariant and protocol sites, no exception class outside
``chexp/errors.py``), the class hierarchy of :mod:`chexp.errors`, and real user mistakes that
must raise a ChexpError subclass with a message naming the parameter, the value and what is
allowed (and, from the command line, print one line and exit with status 2).
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import chexp.errors
from chexp.cli import main
from chexp.errors import (
    ChexpError,
    DataUnavailableError,
    InputRangeError,
    InvalidParameterError,
    PhantomConfigError,
    UnknownLayerError,
    UnknownMethodError,
)
from chexp.models.small import SmallClassifier
from chexp.reproduce import find_notebooks

PACKAGE = Path(chexp.errors.__file__).resolve().parent
BUILTIN_EXCEPTIONS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
}

#: ``raise`` sites of built-in exceptions that are not user errors: (file, enclosing function,
#: exception) -> why. Everything else in chexp raises a ChexpError subclass.
ALLOWED_BUILTIN_RAISES: dict[tuple[str, str, str], str] = {
    ("phantoms/__init__.py", "__getattr__", "AttributeError"):
        "module __getattr__ protocol: Python (hasattr, from-import) expects AttributeError",
    ("phantoms/params.py", "ParamBatch.__getattr__", "AttributeError"):
        "attribute protocol: hasattr/getattr expect AttributeError",
    ("latentshift/search/rule.py", "LambdaSearch.run", "RuntimeError"):
        "internal invariant: every walker has a round budget far below 4096 (a chexp bug)",
    ("__init__.py", "__getattr__", "AttributeError"):
        "module __getattr__ protocol (the lazy chexp.explain): Python expects AttributeError",
    ("bench/latent_shift.py", "_measure_image", "RuntimeError"):
        "internal invariant: the recorded decode+classify passes add up to the search's evaluations (a chexp bug)",
    ("bench/iba.py", "run", "RuntimeError"):
        "internal invariant: the lean IBA maps must be bit-identical on CPU for one seed (a chexp bug)",
}

@functools.cache
def _python_files() -> tuple[tuple[str, ast.Module], ...]:
    """``(path relative to chexp/, syntax tree)`` of every module of the package."""
    return tuple(
        (path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), filename=str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    )


def _raises(tree: ast.Module) -> Iterator[tuple[str, ast.Raise, list[ast.AST]]]:
    """Every ``raise`` with its enclosing function's qualified name and its ancestors."""

    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

    def walk(node: ast.AST, scope: list[str], parents: list[ast.AST]) -> Iterator[tuple[str, ast.Raise, list[ast.AST]]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Raise):
                yield ".".join(scope) or "<module>", child, parents
            inner = [*scope, child.name] if isinstance(child, scopes) else scope
            yield from walk(child, inner, [*parents, child])

    yield from walk(tree, [], [tree])


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return exc.id if isinstance(exc, ast.Name) else None


def _is_main_guard_exit(node: ast.Raise, parents: list[ast.AST]) -> bool:
    """``raise SystemExit(main(...))`` directly under ``if __name__ == "__main__":``."""
    call = node.exc
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "SystemExit"):
        return False
    guard = parents[-1]
    return (
        len(parents) == 2
        and isinstance(guard, ast.If)
        and ast.unparse(guard.test).replace("'", '"') == '__name__ == "__main__"'
        and len(call.args) == 1
        and isinstance(call.args[0], ast.Call)
        and ast.unparse(call.args[0].func) == "main"
    )


def _plain_raises() -> list[tuple[str, str, str, int]]:
    """``(file, function, exception, line)`` of every raise of a built-in exception or of the
    bare :class:`ChexpError` base that is not allow-listed."""
    found = []
    for rel, tree in _python_files():
        for scope, node, parents in _raises(tree):
            name = _raised_name(node)
            if name is None or (name not in BUILTIN_EXCEPTIONS and name != "ChexpError"):
                continue
            if (rel, scope, name) in ALLOWED_BUILTIN_RAISES or _is_main_guard_exit(node, parents):
                continue
            found.append((rel, scope, name, node.lineno))
    return found


def test_no_plain_builtin_raises_in_chexp() -> None:
    bad = _plain_raises()
    assert not bad, (
        "raise a chexp.errors class (InvalidParameterError, InvalidTypeError, ... or a specific one) "
        "instead of a built-in exception or the ChexpError base, or allow-list an internal invariant "
        "with its reason:\n" + "\n".join(f"  chexp/{f}:{line} in {scope}: {name}" for f, scope, name, line in bad)
    )


def test_allow_list_has_no_stale_entries() -> None:
    used = set()
    for rel, tree in _python_files():
        for scope, node, _ in _raises(tree):
            used.add((rel, scope, _raised_name(node)))
    assert set(ALLOWED_BUILTIN_RAISES) <= used, set(ALLOWED_BUILTIN_RAISES) - used


def test_every_exception_class_lives_in_errors_py() -> None:
    names = set(BUILTIN_EXCEPTIONS) | set(chexp.errors.__all__)
    elsewhere = []
    for rel, tree in _python_files():
        if rel == "errors.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
                if bases & names or any(b.endswith(("Error", "Exception")) for b in bases):
                    elsewhere.append(f"chexp/{rel}:{node.lineno} {node.name}({', '.join(sorted(bases))})")
    assert not elsewhere, "exception classes belong in chexp/errors.py:\n" + "\n".join(elsewhere)


def test_errors_module_hierarchy() -> None:
    defined = {
        name for name, obj in vars(chexp.errors).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == "chexp.errors"
    }
    assert defined == set(chexp.errors.__all__)
    for name in defined - {"ChexpError", "ChexpWarning"}:
        cls = getattr(chexp.errors, name)
        if issubclass(cls, Warning):  # a warning: chexp's base, and a built-in warning category
            assert issubclass(cls, chexp.errors.ChexpWarning), name
            continue
        assert issubclass(cls, ChexpError), name
        # also the built-in a Python programmer expects, so `except ValueError` keeps working
        generic = (Exception, BaseException, object)
        expected = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in generic]
        assert expected, f"{name} derives from no built-in exception besides Exception"


# --- real user mistakes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> SmallClassifier:
    return SmallClassifier(["Effusion", "Mass"], channels=(4, 4, 4)).eval()


def test_bad_phantom_config() -> None:
    from chexp.phantoms import PhantomConfig, generate

    with pytest.raises(PhantomConfigError) as info:
        PhantomConfig(size=8)
    assert isinstance(info.value, ValueError)
    assert "size" in str(info.value) and "8" in str(info.value) and "[32, 1024]" in str(info.value)
    with pytest.raises(PhantomConfigError, match=r"n must be a non-negative int, got -1"):
        generate(n=-1)


def test_iba_layer_that_does_not_exist(model: SmallClassifier) -> None:
    from chexp.iba import IBA

    with pytest.raises(UnknownLayerError) as info:
        IBA(model, layer="features.block9")
    assert isinstance(info.value, KeyError)
    assert "'features.block9'" in str(info.value) and "features.block1" in str(info.value)


def test_unknown_method_name(model: SmallClassifier) -> None:
    from chexp.methods import build_method

    with pytest.raises(UnknownMethodError) as info:
        build_method("grad-cam++", model)
    assert "'grad-cam++'" in str(info.value) and "gradcam" in str(info.value)


def test_latent_shift_without_autoencoder(model: SmallClassifier) -> None:
    from chexp.methods import build_method

    with pytest.raises(InvalidParameterError, match="autoencoder.*'latentshift-max'.*got None"):
        build_method("latentshift-max", model)


def test_image_in_the_wrong_range(model: SmallClassifier) -> None:
    from chexp.methods import build_method

    raw12bit = torch.full((1, 1, 32, 32), 4095.0)
    with pytest.raises(InputRangeError) as info:
        build_method("grad", model).attribute(raw12bit, target="Mass")
    assert "[-1024, 1024]" in str(info.value) and "4095" in str(info.value)


def test_bad_arguments_name_parameter_value_and_what_is_allowed(model: SmallClassifier) -> None:
    from chexp.baselines import IntegratedGradients
    from chexp.iba import MultiLayerIBA
    from chexp.latentshift.maps import threshold_percentile

    with pytest.raises(InvalidParameterError, match=r"n_steps must be >= 1, got 0"):
        IntegratedGradients(model, n_steps=0)
    with pytest.raises(InvalidParameterError, match=r"percentile must lie in \[0, 100\], got 150"):
        threshold_percentile(torch.zeros(1, 4, 4), 150)
    with pytest.raises(InvalidParameterError, match=r"one number or one per layer: got 3 thresholds for 2 layers"):
        MultiLayerIBA(model, ["features.block1", "features.block2"], thresholds=[0.1, 0.2, 0.3])


def test_reproduce_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nb").mkdir()
    common = ["reproduce", "--no-build", "--output-dir", str(tmp_path / "run"), "--notebooks-dir"]
    for argv, message in [
        ([*common, str(tmp_path / "nb"), "--device", "gpu0"], "device 'gpu0' is not one of cpu, cuda, cuda:N, mps"),
        ([*common, str(tmp_path / "nb"), "-p", "device=cuda"], "give 'device' with --device"),
        ([*common, str(tmp_path / "missing")], f"notebook folder {tmp_path / 'missing'} does not exist"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("chexp: error: ") and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
    with pytest.raises(DataUnavailableError, match="no .ipynb notebooks in"):  # a FileNotFoundError too
        find_notebooks(tmp_path / "nb")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_bench_iba_cuda_without_gpu_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "iba", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err == "chexp: error: --device cuda: no CUDA device is available; use --device cpu\n"
