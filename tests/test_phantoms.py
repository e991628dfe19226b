"""Tests of the phantom chest radiographs (chexp.phantoms)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from chexp.errors import ChexpError, UnknownNameError
from chexp.phantoms import FINDINGS, PhantomConfig, PhantomConfigError, PhantomDataset, generate

S = 64


@pytest.fixture(scope="module")
def base():
    """48 samples with every finding at prevalence 0.5 (so each appears several times)."""
    return generate(48, seed=3, config=PhantomConfig(size=S, prevalence=0.5))


def test_findings_names_and_order():
    assert FINDINGS == ("Cardiomegaly", "Effusion", "Mass", "Pneumothorax", "Support Devices")


def test_shapes_dtypes_range(base):
    n = len(base)
    assert base.images.shape == (n, 1, S, S) and base.images.dtype == np.float32
    assert base.labels.shape == (n, 5) and base.labels.dtype == np.float32
    assert set(np.unique(base.labels)) <= {0.0, 1.0}
    assert base.masks.shape == (n, 5, S, S) and base.masks.dtype == np.bool_
    assert base.lungs.shape == base.heart.shape == (n, S, S) and base.lungs.dtype == np.bool_
    assert np.isfinite(base.images).all()
    assert base.images.min() >= -1024 and base.images.max() <= 1024
    # anatomy kept away from the clip limits: background dark, bones/heart bright, nothing clipped
    assert (np.abs(base.images) < 1023.9).mean() > 0.999
    lung_mean = np.mean([base.images[i, 0][base.lungs[i]].mean() for i in range(n)])
    heart_mean = np.mean([base.images[i, 0][base.heart[i]].mean() for i in range(n)])
    assert heart_mean - lung_mean > 300  # dense = bright


def test_determinism_and_prefix_consistency(base):
    cfg = PhantomConfig(size=S, prevalence=0.5)
    again = generate(48, seed=3, config=cfg)
    assert again.sha256() == base.sha256()
    first = generate(10, seed=3, config=cfg)
    np.testing.assert_array_equal(first.images, base.images[:10])
    np.testing.assert_array_equal(first.masks, base.masks[:10])
    middle = generate(5, seed=3, config=cfg, start=20, chunk=2)
    np.testing.assert_array_equal(middle.images, base.images[20:25])
    other = generate(10, seed=4, config=cfg)
    assert not np.array_equal(other.images, first.images)
    assert other.sha256() != first.sha256()


def test_labels_equal_mask_nonemptiness(base):
    np.testing.assert_array_equal(base.labels.astype(bool), base.masks.any(axis=(2, 3)))
    assert base.labels.sum(0).min() >= 8  # every finding present in this set


@pytest.mark.parametrize("k", range(len(FINDINGS)))
def test_mask_is_exactly_where_the_finding_alters_the_image(base, k):
    name = FINDINGS[k]
    without = generate(48, seed=3, config=PhantomConfig(size=S, prevalence=0.5), disable=(name,))
    assert without.labels[:, k].sum() == 0 and not without.masks[:, k].any()
    # the other findings are untouched
    others = [j for j in range(5) if j != k]
    np.testing.assert_array_equal(without.masks[:, others], base.masks[:, others])
    diff = np.abs(base.images - without.images)[:, 0]
    mask = base.masks[:, k]
    assert mask.any()
    assert diff[~mask].max() == 0.0, f"{name} changes pixels outside its mask"
    assert (diff[mask] > 0).mean() >= 0.9
    assert (diff[mask] > 0).mean() >= 0.99  # in fact nearly all of them


def test_prevalence_close_to_configured():
    ps = generate(400, seed=11, config=PhantomConfig(size=32, prevalence={"Mass": 0.1, "Effusion": 0.6}))
    freq = ps.labels.mean(0)
    expected = np.array([0.3, 0.6, 0.1, 0.3, 0.3])
    # binomial sd at n=400 is <= 0.025; allow 3.5 sd
    np.testing.assert_allclose(freq, expected, atol=0.09)


def test_device_cooccurrence_sets_conditional_frequency():
    cfg = PhantomConfig(size=32, prevalence=0.4, device_cooccurrence=("Pneumothorax", 0.9, 0.05))
    ps = generate(400, seed=5, config=cfg)
    ptx = ps.labels[:, FINDINGS.index("Pneumothorax")] > 0
    dev = ps.labels[:, FINDINGS.index("Support Devices")] > 0
    assert 100 < ptx.sum() < 220
    assert dev[ptx].mean() > 0.8
    assert dev[~ptx].mean() < 0.12
    # default P(device | no finding) is 0.05 and the config stays hashable
    cfg2 = PhantomConfig(size=32, device_cooccurrence=("Mass", 0.9))
    assert cfg2.device_cooccurrence == ("Mass", 0.9, 0.05)
    assert hash(cfg2) != hash(PhantomConfig(size=32))
    # disabling the co-occurring finding does not change who has a device
    off = generate(100, seed=5, config=cfg, disable="Pneumothorax")
    np.testing.assert_array_equal(off.labels[:, 4], ps.labels[:100, 4])


def _width(mask: np.ndarray) -> int:
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[-1] - cols[0] + 1)


def test_anatomy_varies(base):
    widths = [_width(h) for h in base.heart]
    assert len(set(widths)) >= 5
    lung_areas = base.lungs.sum(axis=(1, 2))
    assert lung_areas.std() > 0.03 * lung_areas.mean()
    assert np.abs(base.images[0] - base.images[1]).mean() > 20


def test_cardiothoracic_ratio_larger_with_cardiomegaly():
    ps = generate(40, seed=2, config=PhantomConfig(size=96, prevalence=0.5))
    k = FINDINGS.index("Cardiomegaly")
    ctr_normal, ctr_big = [], []
    for i in range(len(ps)):
        thorax = _width(ps.lungs[i])
        ctr_normal.append(_width(ps.heart[i]) / thorax)
        if ps.labels[i, k]:
            ctr_big.append(_width(ps.heart[i] | ps.masks[i, k]) / thorax)
    ctr_normal, ctr_big = np.array(ctr_normal), np.array(ctr_big)
    assert len(ctr_big) >= 12
    assert 0.38 <= ctr_normal.min() and ctr_normal.max() <= 0.51
    assert ctr_big.min() > 0.52 and ctr_big.mean() > 0.56
    # the enlargement is outside the normal heart (only its anti-aliased rim can be shared)
    core = ndimage.binary_erosion(ps.heart, structure=np.ones((1, 3, 3), bool))
    assert not (core & ps.masks[:, k]).any()


def test_pneumothorax_region_is_lucent(base):
    k = FINDINGS.index("Pneumothorax")
    without = generate(48, seed=3, config=PhantomConfig(size=S, prevalence=0.5), disable="Pneumothorax")
    for i in np.flatnonzero(base.labels[:, k]):
        m = base.masks[i, k]
        diff = base.images[i, 0][m] - without.images[i, 0][m]
        # lucent region (darker) plus a thin bright pleural line (a minority of the mask)
        assert np.median(diff) < -40 and diff.mean() < 0
        assert 0.5 < (diff < 0).mean() < 0.97
        # it sits in the upper (apical) half of the lung fields
        rows = np.flatnonzero(base.lungs[i].any(axis=1))
        top_half = np.zeros_like(m)
        top_half[: (rows[0] + rows[-1]) // 2] = True
        assert (m & top_half).sum() > 0.5 * m.sum()


def test_mass_lies_in_lungs(base):
    k = FINDINGS.index("Mass")
    for i in np.flatnonzero(base.labels[:, k]):
        m = base.masks[i, k]
        assert (m & base.lungs[i]).sum() > 0.6 * m.sum()


def test_torch_dataset():
    ds = PhantomDataset(6, seed=1, config=PhantomConfig(size=32))
    item = ds[2]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert item["labels"].shape == (5,) and item["masks"].shape == (5, 32, 32)
    assert item["masks"].dtype == torch.bool
    ps = generate(6, seed=1, config=PhantomConfig(size=32))
    np.testing.assert_array_equal(item["image"].numpy(), ps.images[2])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 1, 32, 32)
    assert ds.pathologies == list(FINDINGS)


@pytest.mark.parametrize("size", [64, 200, 256])
def test_other_sizes(size):
    ps = generate(3, seed=0, config=PhantomConfig(size=size, prevalence=1.0))
    assert ps.images.shape == (3, 1, size, size)
    assert ps.labels.all()
    assert -1024 <= ps.images.min() and ps.images.max() <= 1024


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(prevalence=1.5),
        dict(prevalence=-0.1),
        dict(prevalence={"Mass": 2.0}),
        dict(prevalence=(0.3, 0.3)),
        dict(size=16),
        dict(size=20.5),
        dict(device_cooccurrence=("Pneumothorax", 1.2)),
        dict(device_cooccurrence="Pneumothorax"),
    ],
)
def test_bad_config_values(kwargs):
    with pytest.raises(PhantomConfigError) as info:
        PhantomConfig(**kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ChexpError)


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="Pneumotorax"):
        PhantomConfig(device_cooccurrence=("Pneumotorax", 0.9))
    with pytest.raises(UnknownNameError, match="Valid"):
        PhantomConfig(prevalence={"Nodule": 0.2})
    with pytest.raises(UnknownNameError):
        PhantomConfig(device_cooccurrence=("Support Devices", 0.9))
    with pytest.raises(UnknownNameError, match="Edema"):
        generate(2, seed=0, disable=("Edema",))
    with pytest.raises(PhantomConfigError):
        generate(-1, seed=0)
    with pytest.raises(PhantomConfigError):
        generate(2, seed=-3)


def test_worker_processes_give_the_same_set():
    cfg = PhantomConfig(size=32)
    serial = generate(12, seed=7, config=cfg, chunk=4, workers=1)
    parallel = generate(12, seed=7, config=cfg, chunk=4, workers=2)
    assert parallel.sha256() == serial.sha256()


def test_plot_phantom_grid(tmp_path):
    from chexp.plotting.phantoms import plot_phantom_grid

    ps = generate(4, seed=0, config=PhantomConfig(size=32, prevalence=0.5))
    path = tmp_path / "grid.png"
    plot_phantom_grid(ps, n=4, ax_or_path=path)
    assert path.stat().st_size > 1000


# --------------------------------------------------------------------------------------------
# recently generated sets are reused (chexp.phantoms.dataset.recent_sets)
# --------------------------------------------------------------------------------------------
def _same(a, b) -> bool:
    return (a.sha256() == b.sha256() and a.start == b.start and len(a) == len(b)
            and all(np.array_equal(a.params[k], b.params[k]) for k in a.params))


def test_a_request_inside_a_recent_set_is_copied_from_it_and_equals_a_fresh_render() -> None:
    from chexp.phantoms.dataset import RecentSets, recent_sets

    cfg = PhantomConfig(size=32)
    recent_sets.clear()
    small = RecentSets(min_images=8)
    big = generate(40, seed=3, config=cfg, start=10)
    small.put(big)
    hit = small.get(12, 3, cfg, 15, ())
    assert hit is not None and hit.start == 15
    assert _same(hit, generate(12, seed=3, config=cfg, start=15))
    # outside the kept range, another seed, config or disabled finding: not served
    assert small.get(12, 3, cfg, 45, ()) is None
    assert small.get(12, 4, cfg, 15, ()) is None
    assert small.get(12, 3, PhantomConfig(size=32, prevalence=0.5), 15, ()) is None
    assert small.get(12, 3, cfg, 15, ("Mass",)) is None
    # a caller changing its copy changes nothing kept
    hit.images[:] = 0
    hit.masks[:] = True
    assert _same(small.get(12, 3, cfg, 15, ()), generate(12, seed=3, config=cfg, start=15))


def test_generate_reuses_a_recent_set_without_rendering(monkeypatch) -> None:
    import chexp.phantoms.dataset as ds

    cfg = PhantomConfig(size=32)
    ds.recent_sets.clear()
    monkeypatch.setattr(ds, "recent_sets", ds.RecentSets(min_images=8))
    first = generate(30, seed=1, config=cfg)
    calls = []
    monkeypatch.setattr(ds, "_render_job", lambda job: calls.append(job) or pytest.fail("rendered again"))
    again = generate(20, seed=1, config=cfg, start=5)
    assert calls == [] and _same(again, first.subset(slice(5, 25)))


def test_recent_sets_keep_within_their_byte_limit() -> None:
    from chexp.phantoms.dataset import RecentSets

    cfg = PhantomConfig(size=32)
    a, b = generate(10, seed=1, config=cfg), generate(10, seed=2, config=cfg)
    one = RecentSets._bytes(a)
    kept = RecentSets(max_bytes=int(1.5 * one), min_images=1)
    kept.put(a)
    kept.put(b)  # over the limit: the least recently used (a) is dropped
    assert kept.get(10, 1, cfg, 0, ()) is None and kept.get(10, 2, cfg, 0, ()) is not None
    tiny = RecentSets(max_bytes=one // 2, min_images=1)
    tiny.put(a)  # bigger than the whole limit: not kept
    assert tiny.get(10, 1, cfg, 0, ()) is None
