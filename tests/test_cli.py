"""The ``chexp`` command line: a light parser, --version, ``python -m chexp``, help on every
option, one-line user errors, and the subcommands that used to crash."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

import chexp
from chexp.cli import LazyParser, build_parser, main
from chexp.errors import ChexpError

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO))

#: What building the parser (or printing any help) must not import.
HEAVY = ("torch", "torchvision", "torchxrayvision", "sklearn", "pandas", "matplotlib", "captum", "zennit")


def _python(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=ENV, cwd=cwd, capture_output=True, text=True, timeout=120)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    if isinstance(parser, LazyParser):
        parser.configure()
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser tree: ``()``, ``("train",)``, ``("bench", "iba")``, ..."""
    paths = [prefix]
    for action in _subparsers(parser):
        for name, child in action.choices.items():
            paths += _commands(child, (*prefix, name))
    return paths


def _parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = _subparsers(parser)[0].choices[name]
    _subparsers(parser)  # complete a lazy parser
    return parser


COMMANDS = _commands(build_parser())


def test_the_command_tree_keeps_its_names():
    assert {p for p in COMMANDS if len(p) == 1} == {
        ("train",), ("bench",), ("methods",), ("phantoms",), ("explain",), ("reproduce",), ("sweep",),
        ("paper-fixture",)}
    assert {p[1] for p in COMMANDS if len(p) == 2} == {"latent-shift", "iba", "deletion", "sweep", "dataset-scale"}


@pytest.mark.parametrize("code", [
    "import chexp.cli; chexp.cli.build_parser()",
    "from chexp.cli import main; main(['--help'])",
    "from chexp.cli import main; main(['bench', 'deletion', '--help'])",
    "from chexp.cli import main; main(['train', '--help'])",
])
def test_parser_and_help_import_no_numerical_library(code):
    probe = (
        "import sys\n"
        f"try:\n    {code}\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = _python("-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED []"


def test_top_level_help_imports_no_subcommand_module():
    probe = (
        "import sys\nfrom chexp.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules\n"
        "                       if m.startswith(('chexp.cli.', 'chexp.bench', 'chexp.reproduce'))))\n"
    )
    result = _python("-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED []"


def test_lazy_parser_completes_on_first_use():
    calls = []
    parser = argparse.ArgumentParser(prog="p")
    sub = parser.add_subparsers(dest="command", parser_class=LazyParser)
    sub.add_parser("x", help="x", configure=lambda p: calls.append(p.add_argument("--n", type=int, help="n")))
    assert calls == []
    assert parser.parse_args(["x", "--n", "3"]).n == 3
    assert parser.parse_args(["x"]).n is None
    assert len(calls) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"chexp {chexp.__version__}\n"


def test_python_dash_m_chexp():
    result = _python("-m", "chexp", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: chexp ")
    for name in ("train", "bench", "phantoms", "reproduce"):
        assert name in result.stdout
    assert _python("-m", "chexp", "--version").stdout == f"chexp {chexp.__version__}\n"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "chexp")
def test_every_command_has_help_on_every_option(path):
    parser = _parser_of(path)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"chexp {' '.join(path)}: {action.option_strings or action.dest} has no help"
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"chexp {' '.join(path)} {choice.dest} has no help"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "chexp")
def test_every_command_help_exits_0(path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: chexp {' '.join(path)}".rstrip())


def test_phantoms_writes_a_png(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "new" / "grid.png"
    assert main(["phantoms", "--n", "2", "--size", "64", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG" and min(image.size) > 100


def test_user_error_is_one_line_and_exit_2(tmp_path):
    result = _python("-m", "chexp", "phantoms", "--size", "8", "--out", str(tmp_path / "x.png"), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == ["chexp: error: size must lie in [32, 1024] pixels, got 8"]
    assert not (tmp_path / "x.png").exists()


def test_unknown_image_format_is_a_user_error(tmp_path, capsys):
    assert main(["phantoms", "--n", "1", "--out", str(tmp_path / "grid.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"chexp: error: --out {tmp_path / 'grid.txt'}: ") and ".png" in err
    assert len(err.splitlines()) == 1


def test_chexp_errors_are_one_line_other_errors_keep_their_traceback(monkeypatch, capsys):
    from chexp.cli import phantoms

    def user_error(args: argparse.Namespace) -> int:
        raise ChexpError("bad input")

    monkeypatch.setattr(phantoms, "_run", user_error)
    assert main(["phantoms"]) == 2
    assert capsys.readouterr().err == "chexp: error: bad input\n"

    def bug(args: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(phantoms, "_run", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["phantoms"])


def test_bad_option_values_are_argparse_errors(capsys):
    for argv, message in [
        (["phantoms", "--n", "0"], "argument --n: 0 is not a positive integer"),
        (["train", "phantom-classifier", "--epochs", "x"], "argument --epochs: 'x' is not an integer"),
        (["train", "no-such-model"], "argument MODEL: invalid choice: 'no-such-model'"),
        (["bench", "deletion", "--size", "16"], "argument --size: 16 is too small"),
        (["bench", "latent-shift", "--pairs", "phantom,xrv"], "argument --pairs: unknown pair(s) ['xrv']"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


class _Looked(Exception):
    """Raised by the fake model cache with what it was asked for."""


@pytest.fixture
def cache_lookups(monkeypatch):
    """The model cache replaced by one that raises :class:`_Looked` with (name, configuration)."""
    import chexp.training.cohen
    import chexp.training.phantom

    def look(name, config, *args, **kwargs):
        raise _Looked(name, config)

    monkeypatch.setattr(chexp.training.phantom, "cached_model", look)
    monkeypatch.setattr(chexp.training.cohen, "cached_model", look)

    def lookup(call) -> tuple[str, dict]:
        with pytest.raises(_Looked) as looked:
            call()
        return looked.value.args

    return lookup


def test_train_defaults_ask_the_cache_for_the_library_defaults(cache_lookups):
    """``chexp train NAME`` without options trains (or loads) the library's default model."""
    from chexp.training import cohen, phantom_autoencoder, phantom_classifier

    library = {
        "phantom-classifier": phantom_classifier,
        "phantom-autoencoder": phantom_autoencoder,
        "brixia-regressor": cohen.brixia_regressor,
        "brixia-detectors": lambda: cohen.brixia_detectors(weighted=False),
        "brixia-detectors-weighted": lambda: cohen.brixia_detectors(weighted=True),
        "cohen-autoencoder": cohen.cohen_autoencoder,
    }
    from chexp.cli.train import TRAINERS

    assert set(TRAINERS) == set(library)
    for name, default in library.items():
        assert cache_lookups(partial(main, ["train", name])) == cache_lookups(default), name


def test_train_options_reach_the_configuration(cache_lookups):
    _, config = cache_lookups(lambda: main(["train", "phantom-classifier", "--epochs", "2", "--seed", "3"]))
    assert (config["epochs"], config["seed"]) == (2, 3)
    _, config = cache_lookups(lambda: main(["train", "cohen-autoencoder", "--latent-channels", "4", "--size", "64"]))
    assert (config["latent_channels"], config["size"]) == (4, 64)


def test_methods_lists_the_registry(capsys):
    """``chexp methods`` prints the registry itself: every slug once, with its needs."""
    from chexp.methods import METHODS

    assert main(["methods", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["slug"] for r in rows] == list(METHODS)
    by_slug = {r["slug"]: r for r in rows}
    assert by_slug["latentshift-max"]["needs"] == "an autoencoder"
    assert by_slug["iba"]["class"] == "IBA" and "bottleneck" in by_slug["iba"]["needs"]
    assert by_slug["grad"]["needs"] == ""
    assert main(["methods"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == len(METHODS) + 1 and table[1].split()[:2] == ["grad", "Gradients"]


def test_train_device_reaches_the_trainer(monkeypatch, capsys):
    """``--device`` is where the model trains (default: CUDA when available); a bad name is refused."""
    import torch

    import chexp.training.phantom as phantom

    def trainer(config, progress, device):
        raise _Looked(device)

    monkeypatch.setattr(phantom, "cached_model", lambda name, key, train, retrain=False: train())
    monkeypatch.setattr(phantom, "train_phantom_classifier", trainer)
    for argv, expected in ((["--device", "cuda:1"], "cuda:1"), ([], "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.raises(_Looked) as looked:
            main(["train", "phantom-classifier", *argv])
        assert looked.value.args == (expected,)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(_Looked) as looked:
        main(["train", "phantom-classifier"])
    assert looked.value.args == ("cuda",)
    with pytest.raises(SystemExit) as exited:
        main(["train", "phantom-classifier", "--device", "gpu"])
    assert exited.value.code == 2 and "'gpu' is not one of cpu, cuda, cuda:N, mps" in capsys.readouterr().err
