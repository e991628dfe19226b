"""The classifier/autoencoder interfaces and the torchxrayvision loaders."""

from __future__ import annotations

import copy

import pytest
import torch
import torchxrayvision as xrv

from chexp.errors import (
    InputRangeError,
    InputShapeError,
    UnknownNameError,
    UnknownTargetError,
    WeightsUnavailableError,
)
from chexp.models.small import ConvAutoencoder, SmallClassifier
from chexp.models.xrv import (
    PRETRAINED,
    densenet121_architecture,
    ensure_weights,
    load_resnet_ae101,
    load_xrv_densenet,
)
from chexp.targets import ClassTarget, as_target

TARGETS = ["Cardiomegaly", "Effusion", "Mass"]


def _images(b=2, s=64):
    return torch.rand(b, 1, s, s) * 2048 - 1024


def test_unknown_target_lists_valid_names():
    model = SmallClassifier(TARGETS)
    with pytest.raises(UnknownTargetError) as err:
        model.target_index("Pneumonia")
    message = str(err.value)
    assert "Pneumonia" in message and all(t in message for t in TARGETS)
    assert model.target_index("Mass") == 2
    with pytest.raises(UnknownTargetError):
        model.target_index(3)
    with pytest.raises(UnknownTargetError):  # empty names mark columns a model does not predict
        SmallClassifier(["A", ""]).target_index("")


def test_output_kinds_share_weights_and_apply_one_sigmoid():
    model = SmallClassifier(TARGETS).eval()
    x = _images()
    logits = model.with_output("logit")(x)
    probs = model(x)
    assert model.output == "probability"
    torch.testing.assert_close(probs, torch.sigmoid(logits))
    assert model.with_output("logit").classifier.weight is model.classifier.weight
    with pytest.raises(ValueError):
        model.with_output("softmax")


def test_xrv_probability_is_exactly_torchxrayvision_output():
    clf = densenet121_architecture()
    x = torch.rand(2, 1, 224, 224) * 2048 - 1024
    with torch.no_grad():
        ours = clf(x)
        theirs = clf.model(x)  # torchxrayvision's own forward: sigmoid + op_norm
        logits = clf.with_output("logit")(x)
        raw = copy.deepcopy(clf.model)  # torchxrayvision's forward without sigmoid and op_norm
        raw.op_threshs, raw.apply_sigmoid = None, False
        raw_logits = raw(x[:1])  # one image is enough (a DenseNet121 forward costs seconds)
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours, torch.sigmoid(theirs))  # a second sigmoid would change it
    torch.testing.assert_close(logits[:1], raw_logits)  # raw, not squashed
    # op_norm maps each output's operating point to 0.5: above it exactly where sigmoid(logit) is
    # above the threshold (these random weights: 24 of 36 above, all at least 0.027 away)
    above = torch.sigmoid(logits) > clf.model.op_threshs
    assert torch.equal(ours > 0.5, above) and above.any() and (~above).any()
    assert clf.targets[10] == "Cardiomegaly" and len(clf.targets) == 18
    with pytest.raises(InputShapeError, match="224x224"):
        clf.check_input(torch.zeros(1, 1, 128, 128))


def test_class_target_selects_named_column():
    model = SmallClassifier(TARGETS)
    scores = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(ClassTarget("Mass")(scores, model), torch.tensor([2.0, 5.0]))
    assert as_target("Effusion") == ClassTarget("Effusion")
    with pytest.raises(UnknownTargetError):
        as_target("Nodule")(scores, model)
    with pytest.raises(TypeError):
        as_target(1.5)


def test_autoencoder_interface_and_size_check():
    ae = ConvAutoencoder(latent_channels=4, width=8, depth=3).eval()
    x = _images(s=64)
    z = ae.encode(x)
    assert z.shape == (2, 4, 8, 8)
    y = ae.decode(z)
    assert y.shape == x.shape and y.abs().max() <= 1024
    with pytest.raises(InputShapeError, match="multiples of 8"):
        ae.check_input(_images(s=60))
    with pytest.raises(InputRangeError):
        ae.check_input(x * 2)


def test_offline_weights_error_names_file_url_and_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXP_WEIGHTS_DIR", str(tmp_path))
    spec = PRETRAINED["densenet121-res224-all"]
    monkeypatch.setattr("pooch.retrieve", _offline)
    with pytest.raises(WeightsUnavailableError) as err:
        load_xrv_densenet("densenet121-res224-all")
    message = str(err.value)
    assert spec.filename in message and spec.url in message
    assert str(tmp_path / spec.filename) in message
    assert not (tmp_path / spec.filename).exists()
    with pytest.raises(WeightsUnavailableError, match="101-elastic"):
        load_resnet_ae101()
    with pytest.raises(UnknownNameError, match="densenet121-res224-all"):
        ensure_weights("densenet121-res224-everything")


def _offline(*args, **kwargs):
    raise ConnectionError("no network")


def test_weights_on_disk_are_verified_after_first_use(tmp_path, monkeypatch):
    """A file put in place is recorded (sha256) once and a later change is refused."""
    monkeypatch.setenv("CHEXP_WEIGHTS_DIR", str(tmp_path))
    spec = PRETRAINED["101-elastic"]
    torch.manual_seed(0)
    real = xrv.autoencoders.ResNetAE101()
    torch.save(real.state_dict(), tmp_path / spec.filename)  # the format torchxrayvision publishes
    ae = load_resnet_ae101()
    assert ae.input_size == 224 and not any(p.requires_grad for p in ae.parameters())
    record = (tmp_path / (spec.filename + ".sha256")).read_text().split()[0]
    assert len(record) == 64
    with open(tmp_path / spec.filename, "ab") as handle:
        handle.write(b"tampered")
    from chexp.errors import ChecksumError

    with pytest.raises(ChecksumError, match="not loaded"):
        load_resnet_ae101()
