"""Saving/loading trained models with provenance; cache by configuration hash."""

from __future__ import annotations

import json

import pytest
import torch

from chexp.errors import ChecksumError
from chexp.models.small import SmallClassifier
from chexp.models.store import ModelCard, load_model, save_model
from chexp.training import cached_model, config_hash

ARCH = {"targets": ["A", "B"], "output": "probability", "channels": [4, 8], "input_size": 32}


def _card(**kw):
    return ModelCard(name="t", architecture="SmallClassifier", arch_kwargs=ARCH, config={"x": 1},
                     config_hash=config_hash({"x": 1}), seed=3, metrics={"auc": 0.9}, **kw)


def test_round_trip_with_provenance(tmp_path):
    torch.manual_seed(0)
    model = SmallClassifier(**ARCH).eval()
    save_model(model, tmp_path / "m", _card())
    loaded, card = load_model(tmp_path / "m")
    x = torch.rand(2, 1, 32, 32) * 2048 - 1024
    torch.testing.assert_close(loaded(x), model(x))
    assert card.seed == 3 and card.metrics == {"auc": 0.9} and len(card.weights_sha256) == 64
    assert card.versions["torch"] == torch.__version__
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    assert json.loads((tmp_path / "m" / "card.json").read_text())["config"] == {"x": 1}
    assert not list(tmp_path.glob(".m.*"))  # no temporary folder left behind


def test_tampered_weights_are_refused(tmp_path):
    save_model(SmallClassifier(**ARCH), tmp_path / "m", _card())
    with open(tmp_path / "m" / "weights.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ChecksumError, match="not loaded"):
        load_model(tmp_path / "m")


def test_failed_save_leaves_nothing(tmp_path):
    class Broken(torch.nn.Module):
        def state_dict(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_model(Broken(), tmp_path / "m", _card())
    assert list(tmp_path.iterdir()) == []


def test_cached_model_trains_once_per_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXP_CACHE_DIR", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        return SmallClassifier(**ARCH), _card()

    a, _ = cached_model("toy", {"x": 1}, train)
    b, _ = cached_model("toy", {"x": 1}, train)
    c, _ = cached_model("toy", {"x": 2}, train)
    assert len(calls) == 2
    assert config_hash({"x": 1, "y": [1, 2]}) == config_hash({"y": [1, 2], "x": 1})
    assert len(list((tmp_path / "models").glob("toy-*[!k]"))) == 2
