"""The shortcut chapter's measurements (chexp.experiments.shortcut) on tiny phantoms and stubs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chexp.errors import InvalidParameterError, UnknownNameError
from chexp.experiments.shortcut import (
    DEVICE,
    ShortcutCases,
    bootstrap_spearman,
    mass_fractions,
    regions,
    reliance,
    reveal_table,
    shortcut_cases,
    tracking_table,
)
from chexp.models.base import Classifier
from chexp.phantoms import FINDINGS, PhantomConfig, generate
from chexp.profiles import get_profile

CONFIG = PhantomConfig(size=64, device_cooccurrence=("Pneumothorax", 1.0, 0.0))


@pytest.fixture(scope="module")
def cases() -> ShortcutCases:
    return shortcut_cases(3, CONFIG, seed=7, start=0)


def test_cases_carry_finding_and_device_only(cases: ShortcutCases) -> None:
    ps = generate(int(cases.indices.max()) + 1, seed=7, config=CONFIG)
    labels = ps.labels[cases.indices]
    assert labels[:, FINDINGS.index("Pneumothorax")].all() and labels[:, FINDINGS.index(DEVICE)].all()
    assert labels[:, :3].sum() == 0
    # the cases are the generator's own renderings of those samples, bit for bit
    np.testing.assert_array_equal(cases.images.numpy(), ps.images[cases.indices])
    np.testing.assert_array_equal(cases.device_masks, ps.masks[cases.indices, FINDINGS.index(DEVICE)])
    np.testing.assert_array_equal(cases.finding_masks, ps.masks[cases.indices, FINDINGS.index("Pneumothorax")])


@pytest.mark.parametrize(("attribute", "mask"), [("without_device", "device_masks"),
                                                  ("without_finding", "finding_masks")])
def test_intervention_changes_exactly_the_object(cases: ShortcutCases, attribute: str, mask: str) -> None:
    changed = (cases.images != getattr(cases, attribute))[:, 0].numpy()
    masks = getattr(cases, mask)
    assert masks.any(axis=(1, 2)).all()
    assert not (changed & ~masks).any()  # nothing changes outside the object's mask
    assert changed.sum() > 0.5 * masks.sum()  # and most of the mask does change


def test_cooccurrence_changes_only_which_samples_carry_a_device() -> None:
    """The shortcut set is the default set with other device labels: a sample with the same labels
    under both configs is rendered bit for bit the same (the generator itself is unchanged)."""
    plain = generate(40, seed=3, config=PhantomConfig(size=64))
    planted = generate(40, seed=3, config=CONFIG)
    same = (plain.labels == planted.labels).all(1)
    assert 5 < same.sum() < 40
    np.testing.assert_array_equal(plain.images[same], planted.images[same])
    np.testing.assert_array_equal(plain.masks[same], planted.masks[same])
    assert (planted.labels[:, 3] == planted.labels[:, 4]).all()  # P(device | PTX) = 1, else 0


def test_shortcut_cases_rejects_bad_arguments() -> None:
    with pytest.raises(UnknownNameError):
        shortcut_cases(2, CONFIG, finding=DEVICE)
    with pytest.raises(InvalidParameterError):
        shortcut_cases(1, CONFIG)


def test_mass_fractions_on_analytic_maps(cases: ShortcutCases) -> None:
    parts = regions(cases)
    on_device = mass_fractions(cases.device_masks.astype(float), parts)
    np.testing.assert_allclose(on_device["device"], 1.0)
    np.testing.assert_allclose(on_device["finding"] + on_device["elsewhere"], 0.0)
    flat = mass_fractions(-np.ones(cases.device_masks.shape), parts)  # sign ignored: |map|
    for name, part in parts.items():
        np.testing.assert_allclose(flat[name], part.reshape(len(part), -1).mean(1))
    signed = np.where(cases.finding_masks & ~cases.device_masks, 2.0, -1.0)
    np.testing.assert_allclose(mass_fractions(signed, parts, "positive")["finding"], 1.0)
    assert np.isnan(mass_fractions(np.zeros(cases.device_masks.shape), parts)["device"]).all()
    with pytest.raises(UnknownNameError):
        mass_fractions(signed, parts, "squared")


def test_regions_partition_and_dilation(cases: ShortcutCases) -> None:
    parts = regions(cases, dilation=2)
    total = sum(p.astype(int) for p in parts.values())
    assert (total == 1).all()
    assert parts["device"].sum() > cases.device_masks.sum()
    assert (parts["device"] | ~cases.device_masks).all()
    with pytest.raises(InvalidParameterError):
        regions(cases, dilation=-1)


class DevicePixels(Classifier):
    """Logit of "Pneumothorax" = sum of the pixels in ``weights`` / 1000; every other output 0."""

    def __init__(self, weights: np.ndarray) -> None:
        super().__init__(FINDINGS, output="probability", input_size=None)
        self.w = torch.nn.Parameter(torch.from_numpy(weights.astype(np.float32)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), len(FINDINGS))
        out[:, FINDINGS.index("Pneumothorax")] = (x[:, 0] * self.w).flatten(1).sum(1) / 1000.0
        return out


def test_reliance_of_a_classifier_reading_only_device_pixels(cases: ShortcutCases) -> None:
    w = cases.device_masks.any(0) & ~cases.finding_masks.any(0)
    table = reliance(DevicePixels(w), cases, "logit")
    expected = ((cases.images - cases.without_device)[:, 0].double().numpy() * w).reshape(len(cases), -1).sum(1) / 1000
    assert (expected > 0.1).all()  # the device is there and bright
    np.testing.assert_allclose(table["device_effect"], expected, rtol=1e-5)
    np.testing.assert_allclose(table["finding_effect"], 0.0, atol=1e-6)
    prob = reliance(DevicePixels(w), cases, "probability")
    sig = 1 / (1 + np.exp(-table["score"].to_numpy()))
    np.testing.assert_allclose(prob["score"], sig, rtol=1e-5)
    np.testing.assert_array_equal(table["index"], cases.indices)


def test_bootstrap_spearman_on_known_data() -> None:
    x = np.arange(20.0)
    rho, low, high = bootstrap_spearman(x, x**3, n_bootstrap=200)
    assert rho == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    rho, low, high = bootstrap_spearman(x, -x, n_bootstrap=200)
    assert rho == pytest.approx(-1.0) and high == pytest.approx(-1.0)
    y = np.array([1, 3, 2, 5, 4, 7, 6, 9, 8, 10], dtype=float)  # sum d^2 = 8: rho = 1 - 6 * 8 / (10 * 99)
    rho, low, high = bootstrap_spearman(np.arange(10.0), y, n_bootstrap=500, seed=1)
    assert rho == pytest.approx(1 - 48 / 990)
    assert low < rho < high <= 1.0
    assert np.isnan(bootstrap_spearman(x[:2], x[:2])[0])
    with pytest.raises(InvalidParameterError):
        bootstrap_spearman(x, x[:5])


def _fractions(shortcut_device: np.ndarray, clean_device: np.ndarray, effects: np.ndarray):
    import pandas as pd

    n = len(effects)
    rows = []
    for model, dev, eff in (("shortcut", shortcut_device, effects), ("clean", clean_device, np.zeros(n))):
        rows.append(pd.DataFrame({"model": model, "method": "m", "index": np.arange(n), "device": dev,
                                  "finding": 1 - dev, "elsewhere": 0.0, "device_area": 0.01,
                                  "device_effect": eff}))
    return pd.concat(rows, ignore_index=True)


def test_reveal_and_tracking_tables() -> None:
    effects = np.linspace(0.5, 3.0, 12)
    table = _fractions(effects / 10, np.full(12, 0.02), effects)
    reveal = reveal_table(table, n_bootstrap=200).iloc[0]
    assert reveal["difference"] == pytest.approx(np.mean(effects / 10) - 0.02)
    assert reveal["reveals shortcut"] and reveal["CI low"] > 0
    track = tracking_table(table, n_bootstrap=200).set_index("scope")
    assert track.loc["shortcut model", "rho"] == pytest.approx(1.0)
    assert track.loc["shortcut model", "n"] == 12 and track.loc["both models", "n"] == 24
    hidden = reveal_table(_fractions(np.full(12, 0.02), np.full(12, 0.02), effects), n_bootstrap=200).iloc[0]
    assert not hidden["reveals shortcut"]


def test_profile_shortcut_pair_settings() -> None:
    profile = get_profile("phantom", size=64)
    trainings = profile.shortcut_trainings()
    assert list(trainings) == ["shortcut", "clean"]
    assert trainings["shortcut"].phantom.device_cooccurrence == ("Pneumothorax", 0.9, 0.05)
    assert trainings["clean"].phantom == profile.phantom
    same = {k: v for k, v in trainings["shortcut"].settings().items() if k != "phantom"}
    assert same == {k: v for k, v in trainings["clean"].settings().items() if k != "phantom"}
    assert list(profile.shortcut_classifiers()) == ["shortcut", "clean"]  # listing trains nothing


def test_study_tables_text_and_figures(cases: ShortcutCases) -> None:
    """The summaries and figures of a study whose "shortcut" maps sit on the device and whose
    "clean" maps sit on the finding (no model or method run)."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from chexp.experiments.shortcut import ShortcutStudy, summary_text
    from chexp.plotting.shortcut import plot_example_maps, plot_mass_fractions, plot_reliance, plot_tracking

    parts = regions(cases)
    maps = {"shortcut": {"m": cases.device_masks.astype(np.float32)},
            "clean": {"m": (cases.finding_masks & ~cases.device_masks).astype(np.float32)}}
    n = len(cases)
    rel = pd.concat([pd.DataFrame({"model": name, "index": cases.indices, "score": 1.0, "device_effect": eff,
                                   "finding_effect": 2.0, "device_effect_probability": eff / 10})
                     for name, eff in (("shortcut", np.arange(1.0, n + 1)), ("clean", np.zeros(n)))],
                    ignore_index=True)
    fractions = pd.concat([pd.DataFrame({"model": name, "method": "m", "index": cases.indices,
                                         **mass_fractions(maps[name]["m"], parts),
                                         "device_area": parts["device"].reshape(n, -1).mean(1),
                                         "device_effect": rel[rel["model"] == name]["device_effect"].to_numpy()})
                           for name in maps], ignore_index=True)
    study = ShortcutStudy(cases, rel, maps, {}, fractions, "absolute", 0)
    reveal = reveal_table(fractions, n_bootstrap=100)
    assert reveal.loc[0, "difference"] == pytest.approx(1.0) and reveal.loc[0, "reveals shortcut"]
    text = summary_text(rel, reveal, tracking_table(fractions, n_bootstrap=100))
    assert "lowers the shortcut model's finding logit by 2.00" in text
    assert "95 % interval above 0): m; not: none" in text
    assert len(plot_reliance(rel).axes) == 1
    assert len(plot_mass_fractions(fractions).axes) == 1
    assert len(plot_tracking(fractions, n_bootstrap=50).axes) == 4
    fig = plot_example_maps(study, index=0)
    assert fig.axes[2].get_title() == "m · shortcut\ndevice 1.00 · finding 0.00"
    assert fig.axes[3].get_title() == "m · clean\ndevice 0.00 · finding 1.00"
