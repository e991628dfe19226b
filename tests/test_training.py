"""The phantom models at their default settings: held-out quality, caching, provenance.

The first run trains both models (a few minutes on 2 cores); later runs load the cache.
"""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from chexp.errors import UnknownNameError
from chexp.models.zoo import load_autoencoder, load_classifier
from chexp.phantoms import FINDINGS, generate
from chexp.training import phantom_autoencoder, phantom_classifier

pytestmark = pytest.mark.slow
FRESH_SEED = 777  # neither the training nor the validation seed of the cached models


@pytest.fixture(scope="module")
def fresh():
    return generate(600, seed=FRESH_SEED)


def test_phantom_classifier_auc_at_least_095_on_every_finding(fresh):
    model = phantom_classifier()
    with torch.no_grad():
        scores = model(torch.from_numpy(fresh.images)).numpy()
    aucs = {f: roc_auc_score(fresh.labels[:, k], scores[:, k]) for k, f in enumerate(FINDINGS)}
    assert min(aucs.values()) >= 0.95, aucs
    card_aucs = model.card.metrics["val_auc"]
    assert set(card_aucs) == set(FINDINGS) and min(card_aucs.values()) >= 0.95
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
