"""The real-data trainers, on a tiny configuration (few images, 32x32, one epoch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chexp.cohen.dataset import DETECTOR_TARGETS
from chexp.models.store import load_model
from chexp.training import (
    CohenAutoencoderTraining,
    CohenTraining,
    brixia_detectors,
    brixia_regressor,
    cohen_autoencoder,
)
from chexp.training.cohen import detector_metrics, random_shift, regression_metrics
from chexp.training.configs import RegressionHead

TINY = dict(size=32, epochs=1, batch_size=4, channels=(4, 8), max_train=8, max_heldout=6)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("chexp-cache")  # shared: images are read once per module


@pytest.fixture
def dirs(shared_data, cache, monkeypatch):
    monkeypatch.setenv("CHEXP_DATA_DIR", str(shared_data))
    monkeypatch.setenv("CHEXP_CACHE_DIR", str(cache))
    return cache


def test_regression_metrics_known_values():
    g = np.array([[0, 1], [4, 6], [8, 8], [12, 10]], float)
    m = regression_metrics(g[:, 0], g)
    assert m["mae_S"] == 0 and m["r_S"] == pytest.approx(1.0)
    assert m["mae_J"] == pytest.approx(1.25) and m["rater_mae_J_vs_S"] == pytest.approx(1.25)
    assert m["r_J"] == pytest.approx(m["rater_r_J_vs_S"])


def test_detector_metrics_auc():
    labels = np.zeros((4, 2, 3))
    labels[:, 0, 0] = labels[:, 1, 0] = [0, 0, 1, 1]
    labels[:, 0, 1], labels[:, 1, 1] = [1, 0, 1, 0], [0, 1, 0, 1]
    labels[:, :, 2] = 1  # one class only: AUC undefined
    prob = np.tile(np.array([[0.1], [0.2], [0.8], [0.9]]), (1, 3))
    m = detector_metrics(prob, labels)
    assert m[DETECTOR_TARGETS[0]]["auc_S"] == 1.0 and m[DETECTOR_TARGETS[0]]["rater_auc_J_vs_S"] == 1.0
    assert m[DETECTOR_TARGETS[1]]["auc_S"] == 0.25 and m[DETECTOR_TARGETS[1]]["auc_J"] == 0.75
    assert m[DETECTOR_TARGETS[1]]["rater_auc_J_vs_S"] == 0.0
    assert np.isnan(m[DETECTOR_TARGETS[2]]["auc_S"]) and np.isnan(m[DETECTOR_TARGETS[2]]["rater_auc_J_vs_S"])


def test_regression_metrics_undefined_correlation_is_nan():
    g = np.array([[3, 1], [3, 2], [3, 4]], float)  # rater S constant
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), g)
    assert np.isnan(m["r_S"]) and np.isnan(m["rater_r_J_vs_S"]) and m["r_J"] == pytest.approx(0.9819805)
    assert np.isnan(regression_metrics(np.array([1.0, 2.0]), g[:2] + [[0, 0], [1, 0]])["r_S"])  # < 3 pairs


def test_random_shift_is_a_translation():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    y = random_shift(x.repeat(5, 1, 1, 1), 2, g)
    assert y.shape == (5, 1, 8, 8)
    for img in y:  # interior differences of a row stay 1 (shifted ramp, edge-padded)
        diffs = set(torch.diff(img[0, 4]).tolist())
        assert diffs <= {0.0, 1.0}
    assert random_shift(x, 0, g) is x


def test_regressor_trains_caches_and_reports(dirs):
    cfg = CohenTraining(**TINY)
    model = brixia_regressor(cfg, progress=False)
    card = model.card
    assert model.targets == ("BrixIA global score",) and model.output == "score"
    held = card.metrics["heldout"]
    assert held["n"] == 6 and np.isfinite(held["mae_S"]) and np.isfinite(held["rater_mae_J_vs_S"])
    assert card.data["n_train"] == 8 and len(card.data["train_images_sha256"]) == 64
    assert card.config["manifest_sha256"] and card.train_seconds > 0
    again = brixia_regressor(cfg, progress=False)  # loaded, not retrained
    assert again.card.weights_sha256 == card.weights_sha256 and again.card.created == card.created
    x = torch.zeros(2, 1, 32, 32)
    torch.testing.assert_close(again(x), model(x))
    folder = next((dirs / "models").glob("cohen-brixia-regressor-*[!k]"))
    loaded, _ = load_model(folder)
    torch.testing.assert_close(loaded(x), model(x))
    # CheXplain-IBA's head by default: MSE loss, Linear + ReLU (the ReLU survives the cache)
    assert card.config["head"] == {"loss": "mse", "relu": True} and card.arch_kwargs["relu_output"] is True
    assert isinstance(loaded.output_activation, torch.nn.ReLU)


def test_regressor_head_is_part_of_the_cache_key(dirs):
    cfg = CohenTraining(**TINY)
    default = brixia_regressor(cfg, progress=False)
    l1 = brixia_regressor(cfg, progress=False, head=RegressionHead(loss="l1", relu=False))
    assert l1.card.config["head"] == {"loss": "l1", "relu": False} and l1.card.arch_kwargs["relu_output"] is False
    assert l1.card.config_hash != default.card.config_hash
    assert l1.card.weights_sha256 != default.card.weights_sha256


def test_detectors_bce_and_weighted_differ(dirs):
    cfg = CohenTraining(**TINY)
    plain = brixia_detectors(cfg, weighted=False, progress=False)
    weighted = brixia_detectors(cfg, weighted=True, progress=False)
    assert plain.targets == DETECTOR_TARGETS and plain.output == "probability"
    assert plain.card.metrics["pos_weight"] == [1.0, 1.0, 1.0]
    pw = weighted.card.metrics["pos_weight"]
    assert pw != [1.0, 1.0, 1.0] and all(w > 0 for w in pw)
    assert plain.card.config_hash != weighted.card.config_hash


def test_autoencoder_bottleneck_is_configurable(dirs):
    cfg = CohenAutoencoderTraining(**{**TINY, "channels": (4,)}, width=8, depth=2)
    ae = cohen_autoencoder(cfg, latent_channels=3, progress=False)
    assert ae.card.metrics["latent_size"] == 3 * 8 * 8
    assert 0 < ae.card.metrics["heldout"]["mae"] < 2048
    x = torch.zeros(1, 1, 32, 32)
    assert ae.encode(x).shape == (1, 3, 8, 8) and ae(x).shape == x.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_trainers_train_on_cuda(dirs):
    cfg = CohenTraining(**{**TINY, "seed": 1})  # not the CPU tests' cache entries
    models = [brixia_regressor(cfg, progress=False, device="cuda"),
              brixia_detectors(cfg, weighted=True, progress=False, device="cuda"),
              cohen_autoencoder(CohenAutoencoderTraining(**{**TINY, "seed": 1, "shift": 2}, width=8, depth=2),
                                progress=False, device="cuda")]
    assert all(p.device.type == "cpu" for m in models for p in m.parameters())
    assert np.isfinite(models[0].card.metrics["heldout"]["mae_S"])
    assert 0 < models[2].card.metrics["heldout"]["mae"] < 2048
