"""Experiment profiles: the registry (complete on import, below the experiments layer), phantom
samples and training images, the bottleneck sweeps, the paper profile's offline failure, and the
profiles each notebook declares."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from chexp.errors import (
    ChexpError,
    DataUnavailableError,
    UnknownNameError,
    UnsupportedProfileError,
    WeightsUnavailableError,
)
from chexp.profiles import PROFILES, CohenProfile, PaperProfile, PhantomProfile, Profile, get_profile

REPO = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter that imports this tree's ``chexp``; its stdout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_registry_is_complete_on_import_and_below_the_experiments():
    """In a fresh interpreter, ``import chexp.profiles`` alone registers every profile; profiles,
    data, cohen and models sit below ``chexp.experiments``: importing every module of them (and
    building each profile) leaves it unimported."""
    out = _python(
        "import chexp.profiles as p; p.get_profile('cohen')\n"
        "import importlib, json, pkgutil, sys\n"
        "names = sorted(p.PROFILES)\n"
        "for name in names: p.get_profile(name)\n"
        "for package in ('chexp.profiles', 'chexp.data', 'chexp.cohen', 'chexp.models'):\n"
        "    root = importlib.import_module(package)\n"
        "    for info in pkgutil.walk_packages(root.__path__, package + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "upward = sorted(m for m in sys.modules if m.split('.')[:2] == ['chexp', 'experiments'])\n"
        "print(json.dumps({'profiles': names, 'experiments': upward}))\n"
    )
    assert json.loads(out) == {"profiles": ["cohen", "paper", "phantom"], "experiments": []}


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports anywhere (top level or inside functions)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            names.add(".".join([*base, *([node.module] if node.module else [])]))
    return names


def test_no_lazy_import_reaches_up_into_the_experiments():
    """Not even inside a function: the experiments may import these layers, never the reverse."""
    for layer in ("profiles", "data", "cohen", "models"):
        for path in sorted((REPO / "chexp" / layer).rglob("*.py")):
            upward = {m for m in _imported_modules(path) if m.split(".")[:2] == ["chexp", "experiments"]}
            assert not upward, f"{path.relative_to(REPO)} imports {sorted(upward)}"


def test_get_profile_builds_each_registered_profile():
    assert {name: type(get_profile(name)) for name in PROFILES} == {
        "phantom": PhantomProfile, "cohen": CohenProfile, "paper": PaperProfile}
    assert get_profile("phantom", size=64).size == 64
    assert all(issubclass(cls, Profile) and cls.name == name for name, cls in PROFILES.items())


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="cohen, paper, phantom"):
        get_profile("nih")


def test_every_profile_has_an_example_target_among_its_tasks():
    """Single-target pages run under any profile with ``target = None`` (its example target)."""
    for name in PROFILES:
        profile = get_profile(name)
        assert profile.example_target in profile.tasks, name


def test_phantom_samples_are_deterministic_held_out_and_positive_for_a_task():
    prof = PhantomProfile(size=64)
    a = prof.samples(6, seed=1, task="Mass")
    b = prof.samples(6, seed=1, task="Mass")
    assert len(a) == 6 and a.images.shape == (6, 1, 64, 64)
    assert np.array_equal(a.images.numpy(), b.images.numpy())
    assert (a.labels[:, a.targets.index("Mass")] == 1).all()
    assert all(a.masks["Mass"][i].any() for i in range(6))
    other = prof.samples(6, seed=2, task="Mass")
    assert not np.array_equal(a.images.numpy(), other.images.numpy())
    plain = prof.samples(20, seed=0)
    assert 0 < plain.labels.sum() < plain.labels.size
    with pytest.raises(UnknownNameError, match="Cardiomegaly"):
        prof.samples(2, task="Nodule")


def test_phantom_training_images_are_the_classifiers_training_stream():
    from chexp.phantoms import PhantomConfig, generate

    prof = PhantomProfile(size=64)
    assert prof.phantom == PhantomConfig(size=64)
    images = prof.training_images(3)
    assert images.shape == (3, 1, 64, 64)
    assert np.array_equal(images.numpy(), generate(3, seed=0, config=PhantomConfig(size=64)).images)
    held_out = prof.samples(3, seed=0).images.numpy()
    assert not np.array_equal(images.numpy(), held_out)


def test_phantom_bottleneck_sweep_shares_one_cheap_schedule(monkeypatch):
    """The wiring only: one cached autoencoder per bottleneck, depth 4 and width 8, 2 epochs on
    1000 phantoms unless asked otherwise."""
    import chexp.training as training

    asked = []
    monkeypatch.setattr(training, "phantom_autoencoder",
                        lambda cfg, progress, device: asked.append(cfg) or cfg.latent_channels)
    assert PhantomProfile(size=64).bottleneck_autoencoders([2, 8], progress=False) == {2: 2, 8: 8}
    assert asked[0] == training.AutoencoderTraining(phantom=PhantomProfile(size=64).phantom, latent_channels=2,
                                                    depth=4, width=8, epochs=2, n_train=1000)
    asked.clear()
    PhantomProfile().bottleneck_autoencoders([4], epochs=3, n_train=50, progress=False)
    assert (asked[0].epochs, asked[0].n_train, asked[0].phantom.size) == (3, 50, 128)
    with pytest.raises(ValueError, match="positive"):
        PhantomProfile().bottleneck_autoencoders([], progress=False)


def test_cohen_bottleneck_sweep_asks_for_one_autoencoder_per_size(monkeypatch):
    """The wiring only (training itself is tested in test_cohen_train.py): one cached
    autoencoder per bottleneck, the schedule overridden only when asked."""
    import chexp.training as train

    asked = []
    monkeypatch.setattr(train, "cohen_autoencoder",
                        lambda cfg, latent_channels, progress, device:
                        asked.append((cfg, latent_channels)) or latent_channels)
    assert CohenProfile().bottleneck_autoencoders([2, 8], progress=False) == {2: 2, 8: 8}
    assert [c for _, c in asked] == [2, 8]
    assert asked[0][0] == train.CohenAutoencoderTraining(size=128)  # the profile's own schedule
    asked.clear()
    CohenProfile(size=64).bottleneck_autoencoders([4], epochs=3, n_train=50, progress=False)
    cfg = asked[0][0]
    assert (cfg.size, cfg.epochs, cfg.max_train) == (64, 3, 50)
    with pytest.raises(ValueError, match="positive"):
        CohenProfile().bottleneck_autoencoders([0], progress=False)


def test_paper_profile_says_what_it_lacks():
    paper = get_profile("paper")
    with pytest.raises(UnsupportedProfileError, match="no bottleneck sweep"):
        paper.bottleneck_autoencoders([2])
    with pytest.MonkeyPatch.context() as mp:  # NIH training images (IBA statistics) come from CHEXP_PAPER_DATA
        mp.delenv("CHEXP_PAPER_DATA", raising=False)
        with pytest.raises(DataUnavailableError, match="CHEXP_PAPER_DATA"):
            paper.training_images(4)
    assert issubclass(UnsupportedProfileError, ChexpError)


def test_paper_profile_stops_at_check_offline_with_actionable_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXP_WEIGHTS_DIR", str(tmp_path))

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr("pooch.retrieve", offline)
    with pytest.raises(WeightsUnavailableError) as err:
        get_profile("paper").check()
    assert str(tmp_path) in str(err.value) and "https://" in str(err.value)


def test_every_notebook_declares_its_profiles_in_metadata_only():
    """One declaration per notebook (metadata ``chexp.profiles``), in registered names; no cell
    checks the profile with ``require_profile`` any more."""
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        profiles = notebook.metadata.get("chexp", {}).get("profiles")
        assert isinstance(profiles, list) and profiles, f"{path.name}: no metadata chexp.profiles"
        assert len(set(profiles)) == len(profiles) and set(profiles) <= set(PROFILES), (path.name, profiles)
        assert "phantom" in profiles, f"{path.name}: every page runs on the offline default"
        assert not any("require_profile" in cell.source for cell in notebook.cells), path.name


def test_profiles_train_their_models_on_the_gpu_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models a profile trains on first use go to `train_device` (default: CUDA when available)."""
    import chexp.training as training
    from chexp.models.small import SmallClassifier

    seen: list[object] = []

    def fake_classifier(config: object = None, progress: bool = True, retrain: bool = False,
                        device: object = "cpu") -> SmallClassifier:
        seen.append(device)
        return SmallClassifier(targets=("a",))

    monkeypatch.setattr(training, "phantom_classifier", fake_classifier)
    get_profile("phantom", train_device="cuda:3").classifier()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    get_profile("phantom").classifier()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    get_profile("phantom").classifier()
    assert seen == ["cuda:3", "cuda", "cpu"]


def test_paper_profile_classifiers_are_the_three_paper_models_loaded_lazily(monkeypatch):
    from chexp.models.small import SmallClassifier

    loaded = []

    def fake_load(name, output="probability"):
        loaded.append((name, output))
        return SmallClassifier([name], output=output, channels=(4, 4))

    monkeypatch.setattr("chexp.models.zoo.load_classifier", fake_load)
    models = get_profile("paper").classifiers(output="logit")
    assert list(models) == ["XRV-all", "XRV-mimic_ch", "JF Healthcare"] and loaded == []
    picked = models.select(["JF Healthcare", "XRV-all"])
    assert list(picked) == ["JF Healthcare", "XRV-all"] and loaded == []
    assert picked["JF Healthcare"].targets == ("jfhealthcare",) and picked["JF Healthcare"].output == "logit"
    assert picked["JF Healthcare"] is models["JF Healthcare"]  # loaded once, shared with the full set
    assert dict(models.items()).keys() == set(models)
    assert loaded == [("jfhealthcare", "logit"), ("densenet121-res224-all", "logit"),
                      ("densenet121-res224-mimic_ch", "logit")]
    with pytest.raises(UnknownNameError, match="XRV-mimic_ch"):
        models.select(["densenet121-res224-all"])
    with pytest.raises(ChexpError, match="list of classifier names"):
        models.select("XRV-all")


def test_other_profiles_compare_their_one_classifier_named_after_them(monkeypatch):
    calls = []
    monkeypatch.setattr(PhantomProfile, "classifier", lambda self, output="probability": calls.append(output) or output)
    for name in ("phantom", "cohen"):
        models = get_profile(name).classifiers()
        assert list(models) == [name] and calls == []
    assert PhantomProfile().classifiers("logit")["phantom"] == "logit" and calls == ["logit"]
