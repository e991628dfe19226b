"""Experiment profiles: phantom samples, and the paper profile's offline failure."""

from __future__ import annotations

import numpy as np
import pytest

from chexp.errors import UnknownNameError, WeightsUnavailableError
from chexp.profiles import PhantomProfile, get_profile


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


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="phantom"):
        get_profile("nih")


def test_paper_profile_stops_at_check_offline_with_actionable_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXP_WEIGHTS_DIR", str(tmp_path))

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr("pooch.retrieve", offline)
    with pytest.raises(WeightsUnavailableError) as err:
        get_profile("paper").check()
    assert str(tmp_path) in str(err.value) and "https://" in str(err.value)


def test_every_profile_has_an_example_target_among_its_tasks():
    """Single-target pages run under any profile with ``target = None`` (its example target)."""
    from chexp.profiles import PROFILES, get_profile

    for name in sorted({*PROFILES, "cohen"}):
        profile = get_profile(name)
        assert profile.example_target in profile.tasks, name
