"""The phantom models at their default settings: held-out quality, caching, provenance; and tiny
configurations of every phantom trainer, on the CPU and (when present) on a CUDA device.

The first run trains both default models (a few minutes on 2 cores); later runs load the cache.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from chexp.errors import InvalidParameterError, UnknownNameError
from chexp.models.zoo import load_autoencoder, load_classifier
from chexp.phantoms import FINDINGS, PhantomConfig, generate
from chexp.training import (
    AutoencoderTraining,
    ClassifierTraining,
    ImbalancedTraining,
    PhantomRegressionTraining,
    imbalanced_classifier,
    phantom_autoencoder,
    phantom_classifier,
    phantom_regressor,
)
from chexp.training.configs import RegressionHead
from chexp.training.severity import zone_scores

pytestmark = pytest.mark.slow
FRESH_SEED = 777  # neither the training nor the validation seed of the cached models
TINY = dict(phantom=PhantomConfig(size=64, prevalence=0.2), n_train=64, n_val=32, epochs=1, batch_size=32)
NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=NO_CUDA)]


@pytest.fixture(scope="module")
def fresh():
    return generate(600, seed=FRESH_SEED)


def test_phantom_classifier_detects_every_finding(fresh):
    """The default classifier detects every finding, with a margin another CPU's rounding cannot
    cross. Mass, the smallest finding, is the hardest: for training seeds 0 / 1 / 2 its held-out
    AUC measured 0.9495 / 0.985 / 0.958 and on these 600 fresh phantoms 0.951 / 0.981 / 0.963
    (seed 0 is the default; one machine gave 0.952 held out, another 0.9495). The bar is 0.93: a
    margin of 0.02 over the worst seed. Every other finding measured >= 0.998 (bar 0.98)."""
    model = phantom_classifier()
    with torch.no_grad():
        scores = model(torch.from_numpy(fresh.images)).numpy()
    aucs = {f: roc_auc_score(fresh.labels[:, k], scores[:, k]) for k, f in enumerate(FINDINGS)}
    assert min(aucs.values()) >= 0.93, aucs
    assert min(v for f, v in aucs.items() if f != "Mass") >= 0.98, aucs
    card_aucs = model.card.metrics["val_auc"]
    assert set(card_aucs) == set(FINDINGS) and min(card_aucs.values()) >= 0.93, card_aucs
    assert model.card.data["kind"] == "phantom" and len(model.card.weights_sha256) == 64


def test_phantom_autoencoder_reconstructs(fresh):
    ae = phantom_autoencoder()
    x = torch.from_numpy(fresh.images[:64])
    with torch.no_grad():
        recon = ae(x)
    mae = float((recon - x).abs().mean())
    baseline = float((x - x.mean(0, keepdim=True)).abs().mean())  # predicting the mean image
    assert mae < 0.25 * baseline, (mae, baseline)
    assert abs(mae - ae.card.metrics["val_mae"]) < 0.5 * ae.card.metrics["val_mae"] + 5


def test_models_load_by_name_from_the_cache():
    a = load_classifier("phantom", output="logit")
    b = phantom_classifier()
    x = torch.from_numpy(generate(4, seed=FRESH_SEED).images)
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(a(x)), b(x))
    assert load_autoencoder("phantom").card.config_hash == phantom_autoencoder().card.config_hash
    with pytest.raises(UnknownNameError, match="densenet121-res224-all"):
        load_classifier("resnet50-everything")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXP_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("device", DEVICES)
def test_every_phantom_trainer_takes_a_device(device, own_cache):
    small = dict(TINY, channels=(4, 8, 8))
    models = [
        phantom_classifier(ClassifierTraining(**small), progress=False, device=device),
        phantom_autoencoder(AutoencoderTraining(**TINY, width=8), progress=False, device=device),
        phantom_regressor(PhantomRegressionTraining(**small), progress=False, device=device),
        *(imbalanced_classifier(ImbalancedTraining(**small), weighted=w, progress=False, device=device)
          for w in (False, True)),
    ]
    assert all(p.device.type == "cpu" for m in models for p in m.parameters())  # returned from the cache
    classifier, autoencoder, regressor, bce, weighted = (m.card.metrics for m in models)
    assert set(classifier["val_auc"]) == set(FINDINGS) and autoencoder["latent_size"] == 2 * 16 * 16
    assert np.isfinite(regressor["val_mae"]) and np.isfinite(autoencoder["val_mae"])
    assert bce["pos_weight"] == [1.0] * 5 and all(w > 1 for w in weighted["pos_weight"])
    assert len(list(own_cache.glob("models/*[!k]"))) == 5


def test_cpu_training_is_deterministic(own_cache):
    cfg = ClassifierTraining(**TINY, channels=(4, 8, 8))
    first = phantom_classifier(cfg, progress=False).card.weights_sha256
    assert phantom_classifier(cfg, progress=False, retrain=True).card.weights_sha256 == first


def test_regression_head_defaults_to_mse_and_linear_relu():
    """CheXplain-IBA trains its regressor with MSE (paper section 2.2; released model/model.py:
    nn.MSELoss) on a Linear + ReLU head; chexp's stand-ins do the same by default."""
    head = RegressionHead()
    assert (head.loss, head.relu) == ("mse", True) and head.architecture() == {"relu_output": True}
    out, target = torch.tensor([[1.0], [4.0]]), torch.tensor([3.0, 3.0])
    assert float(head.loss_function()(out, target)) == pytest.approx((4 + 1) / 2)
    assert float(RegressionHead(loss="l1").loss_function()(out, target)) == pytest.approx((2 + 1) / 2)
    assert PhantomRegressionTraining().settings()["head"] == {"loss": "mse", "relu": True}
    with pytest.raises(InvalidParameterError, match="mse"):
        RegressionHead(loss="huber")  # type: ignore[arg-type]


def test_default_regressor_predicts_the_phantom_severity(fresh):
    """The default severity regressor (MSE, Linear + ReLU) on 600 fresh phantoms measured MAE 1.00
    and Pearson r 0.922 (held out: 1.02 and 0.914); the L1 / linear-head model it replaces measured
    1.21 and 0.916. Bars: MAE 1.5 and r 0.85, with the mean-predicting baseline (MAE 2.94) far off."""
    model = phantom_regressor()
    y = zone_scores(fresh.lungs, fresh.masks)[1].sum(1)
    with torch.no_grad():
        pred = model(torch.from_numpy(fresh.images))[:, 0].numpy()
    mae, r = float(np.abs(pred - y).mean()), float(np.corrcoef(pred, y)[0, 1])
    assert mae < 1.5 and r > 0.85, (mae, r)
    assert pred.min() >= 0 and model.card.config["head"] == {"loss": "mse", "relu": True}


def test_tiny_regressor_trains_its_head(own_cache):
    small = dict(TINY, channels=(4, 8, 8))
    relu = phantom_regressor(PhantomRegressionTraining(**small), progress=False)
    linear = phantom_regressor(PhantomRegressionTraining(**small, head=RegressionHead(loss="l1", relu=False)),
                               progress=False)
    assert relu.card.arch_kwargs["relu_output"] is True and linear.card.arch_kwargs["relu_output"] is False
    assert relu.card.config["head"] == {"loss": "mse", "relu": True} != linear.card.config["head"]
    assert relu.card.config_hash != linear.card.config_hash
    assert len(list(own_cache.glob("models/phantom-severity-regressor-*[!k]"))) == 2
    # a ReLU head never scores below 0, whatever its linear layer gives
    with torch.no_grad():
        relu.classifier.bias.fill_(-1e4)
        linear.classifier.bias.fill_(-1e4)
        x = torch.from_numpy(generate(4, seed=FRESH_SEED, config=TINY["phantom"]).images)
        assert (relu(x) == 0).all() and (linear(x) < 0).all()
