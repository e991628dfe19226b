"""The Gifsplanation appendix notebooks 40-42 (App. D.2B depth sweep, App. G robustness, App. I/J
galleries) run at smoke size and save what they claim; the experiment helpers behind them behave
as documented.

The three notebooks are executed once per module through :func:`chexp.reproduce.reproduce` (the
phantom profile, small parameters), then each test checks one notebook's saved tables against
values recomputed here from the same profile, models and images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from chexp.errors import InvalidParameterError, UnknownNameError
from chexp.experiments.autoencoder_depth import depth_configs, epoch_snapshots
from chexp.experiments.robustness import PAPER_SCALES, gaussian_blur, robustness_iou, uniform_noise
from chexp.phantoms import PhantomConfig

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["40_gs_appD2_autoencoder_depth", "41_gs_appG_robustness", "42_gs_appIJ_galleries"]

#: Smoke parameters, given to every notebook (each uses the ones it knows).
SMOKE = {
    "n_samples": 2,
    "tasks": ["Cardiomegaly", "Mass"],
    "methods": ["grad", "integrated", "latentshift-max"],
    "integrated_steps": 4,
    "noise_scales": [0, 1000],
    "blur_sigmas": [0, 20],
    "n_mae": 8,
    "depths": [2, 3],
    "depth_epochs": 2,
    "depth_n_train": 16,
    "n_frames": 4,
    "n_pool": 3,
    "n_tp_fp": 2,
    "fp_pool": 48,
    "frames_shown": 2,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from chexp.reproduce import reproduce

    out = tmp_path_factory.mktemp("gs_appendix_notebooks")
    return reproduce(profile="phantom", only=NOTEBOOKS, params=SMOKE, output_dir=out, build=False, progress=False)


@pytest.fixture(scope="module")
def phantom():
    from chexp.profiles import get_profile

    prof = get_profile("phantom")
    return prof, prof.classifier().eval(), prof.autoencoder().eval()


def _outputs(run, stem: str) -> Path:
    runs = {r.name: r for r in run.runs}
    assert stem in runs, f"{stem} was not executed"
    assert runs[stem].ok, f"{stem} failed: {runs[stem].error}"
    return run.run_dir / "outputs" / stem


def _figures(folder: Path, *names: str) -> None:
    for name in names:
        for ext in ("png", "svg"):
            path = folder / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 2000, f"{path} missing or trivial"


def _predictions(classifier, images: torch.Tensor, target: str) -> np.ndarray:
    with torch.no_grad():
        return classifier(images)[:, classifier.target_index(target)].numpy()


def test_notebooks_listed_and_declared():
    import nbformat
    import yaml

    from chexp.book import toc_notebooks

    listed = toc_notebooks(REPO / "_toc.yml")
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    gifsplanation = next(p for p in toc["parts"] if p["caption"].startswith("Gifsplanation"))
    chapters = [c["file"] for c in gifsplanation["chapters"]]
    for stem in NOTEBOOKS:
        assert stem in listed and f"notebooks/{stem}" in chapters, stem
        nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
        assert "phantom" in nb.metadata["chexp"]["profiles"]
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_appD2_depth_sweep(run, phantom):
    from chexp.experiments.reconstruction import reconstruction_mae

    out = _outputs(run, "40_gs_appD2_autoencoder_depth")
    _figures(out, "figD2B_depth_sweep")
    t = pd.read_csv(out / "figD2B_depth_sweep.csv")
    depths, epochs = SMOKE["depths"], SMOKE["depth_epochs"]
    # one row per depth and epoch, in that order
    assert list(zip(t["depth"], t["epoch"], strict=True)) == [(d, e) for d in depths for e in range(1, epochs + 1)]
    # the latent has 2048 values at every depth: channels x (128 / 2**depth)**2
    assert (t["latent_size"] == 2048).all()
    assert list(t["latent_channels"]) == [2048 // (128 // 2**d) ** 2 for d in depths for _ in range(epochs)]
    assert (t["n"] == SMOKE["n_samples"]).all() and t["iou_mean"].between(0, 1).all() and (t["mae"] > 0).all()
    assert t.groupby("depth")["train_seconds"].apply(lambda s: s.is_monotonic_increasing).all()
    final = pd.read_csv(out / "figD2B_last_epoch.csv")
    assert list(final["depth"]) == depths and (final["epoch"] == epochs).all()  # one row per depth
    # the MAE is that of the cached last snapshot on the notebook's held-out images
    prof, _, _ = phantom
    held_out = prof.samples(SMOKE["n_mae"], seed=1).images
    for depth, cfg in depth_configs(prof.phantom, depths, epochs=epochs, n_train=SMOKE["depth_n_train"]).items():
        last = epoch_snapshots(cfg, progress=False)[-1]
        assert reconstruction_mae(last, held_out) == pytest.approx(final.set_index("depth").loc[depth, "mae"],
                                                                    rel=1e-4)


def test_appG_robustness(run, phantom):
    from chexp.experiments.iou import compute_iou
    from chexp.experiments.samples import task_samples

    out = _outputs(run, "41_gs_appG_robustness")
    _figures(out, "figG1_robustness")
    summary = pd.read_csv(out / "figG1_robustness.csv")
    scales = {"noise": SMOKE["noise_scales"], "blur": SMOKE["blur_sigmas"]}
    # one point per scale on every curve (perturbation x task x method)
    for (name, _, _), curve in summary.groupby(["perturbation", "task", "method"]):
        assert list(curve["scale"]) == [float(s) for s in scales[name]]
        assert (curve["n"] == SMOKE["n_samples"]).all()
    assert summary.groupby(["perturbation", "task", "method"]).ngroups == 2 * 2 * len(SMOKE["methods"])
    # at scale 0 both rows hold the clean IoU of Table 1's pipeline on the same images
    prof, classifier, autoencoder = phantom
    per_task = task_samples(prof, SMOKE["tasks"], SMOKE["n_samples"], seed=0)
    clean = compute_iou(SMOKE["methods"], classifier, autoencoder, per_task,
                        settings={"integrated": {"n_steps": SMOKE["integrated_steps"]}}, progress=False)
    per = pd.read_csv(out / "figG1_iou_per_sample.csv")
    for name in scales:
        zero = per[(per["perturbation"] == name) & (per["scale"] == 0)].reset_index(drop=True)
        np.testing.assert_allclose(zero["iou"], clean["iou"], atol=1e-9)
        np.testing.assert_allclose(zero["prediction"], clean["prediction"], atol=1e-6)
    # the degraded images change what the classifier says and where the maps point (measured:
    # every prediction moves by >= 0.039 with noise 1000, >= 0.197 with blur 20; mean IoU over
    # methods, tasks and images 0.20 clean, 0.021 with noise 1000, 0.033 with blur 20)
    for name, scale in (("noise", SMOKE["noise_scales"][-1]), ("blur", SMOKE["blur_sigmas"][-1])):
        worse = per[(per["perturbation"] == name) & (per["scale"] == scale)].reset_index(drop=True)
        assert (np.abs(worse["prediction"] - clean["prediction"]) > 0.01).all(), name
        assert worse["iou"].mean() < 0.5 * clean["iou"].mean(), name


def test_appIJ_galleries(run, phantom):
    from chexp.experiments.samples import task_samples

    out = _outputs(run, "42_gs_appIJ_galleries")
    _figures(out, "figI1_gallery", "figJ1_true_false_positives")
    prof, classifier, _ = phantom
    g = pd.read_csv(out / "figI1_gallery.csv")
    assert list(g["target"]) == [t for t in SMOKE["tasks"] for _ in range(SMOKE["n_samples"])]
    assert (g["label"] == 1).all() and g["iou"].between(0, 1).all()
    # Latent Shift's counterfactual lowers the prediction on the reconstruction, its upper frame raises it
    assert (g["prediction_lower"] < g["initial_prediction"]).all()
    assert (g["lambda_lower"] < 0).all() and (g["lambda_upper"] >= 0).all()
    # each shown image is its pool's highest prediction below 0.99 (or the highest, if none is)
    pools = task_samples(prof, SMOKE["tasks"], SMOKE["n_pool"], seed=0)
    for task, pool in pools.items():
        p = _predictions(classifier, pool.images, task)
        best = p[p < 0.99].max() if (p < 0.99).any() else p.max()
        assert g.loc[g["target"] == task, "prediction"].iloc[0] == pytest.approx(best, abs=1e-6)

    j = pd.read_csv(out / "figJ1_true_false_positives.csv")
    k, threshold = SMOKE["n_tp_fp"], 0.5
    tp, fp = j[j["group"] == "true positive"], j[j["group"] == "false positive"]
    assert len(tp) == k and len(fp) == k
    assert (tp["label"] == 1).all() and (tp["prediction"] >= threshold).all() and tp["predicted_positive"].all()
    assert (fp["label"] == 0).all() and fp["prediction"].is_monotonic_decreasing
    assert (fp["predicted_positive"] == (fp["prediction"] >= threshold)).all()
    # the negatives shown are the pool's highest-scoring negatives
    pool = prof.samples(SMOKE["fp_pool"], seed=2)
    p = _predictions(classifier, pool.images, "Mass")
    negatives = np.sort(p[pool.labels[:, list(pool.targets).index("Mass")] == 0])[::-1]
    np.testing.assert_allclose(fp["prediction"], negatives[:k], atol=1e-6)


# ------------------------------------------------------------------------------------------
# helpers, without notebooks
# ------------------------------------------------------------------------------------------
def test_uniform_noise_is_the_released_noise_clipped():
    x = torch.zeros(2, 1, 16, 16)
    assert torch.equal(uniform_noise(x, 0.0), x)
    y = uniform_noise(x, 1000.0, seed=3)
    assert float(y.min()) >= 0 and float(y.max()) < 1000 and abs(float(y.mean()) - 500) < 60
    assert torch.equal(y, uniform_noise(x, 1000.0, seed=3))  # seeded
    assert torch.allclose(uniform_noise(x, 2000.0, seed=3).clamp(max=1024), (2 * y).clamp(max=1024))  # same draw
    bright = uniform_noise(torch.full((1, 1, 8, 8), 900.0), 4000.0)
    assert float(bright.max()) == 1024.0  # clipped to the range


def test_gaussian_blur_matches_released_skimage_call():
    from skimage.filters import gaussian

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1024, 1024, (1, 1, 224, 224)).astype(np.float32))
    released = gaussian(x[0, 0].double().numpy(), mode="constant", sigma=(10, 10), truncate=3.5)
    np.testing.assert_allclose(gaussian_blur(x, 10.0)[0, 0].numpy(), released, atol=1e-3)
    # on a 112-pixel image the same sigma is 5 pixels
    half = x[..., ::2, ::2].contiguous()
    released = gaussian(half[0, 0].double().numpy(), mode="constant", sigma=(5, 5), truncate=3.5)
    np.testing.assert_allclose(gaussian_blur(half, 10.0)[0, 0].numpy(), released, atol=1e-3)
    assert torch.equal(gaussian_blur(x, 0.0), x)
    assert PAPER_SCALES == {"noise": (0, 1000, 2000, 3000, 4000), "blur": (0, 10, 20, 30, 40)}


def test_robustness_iou_rejects_unknown_and_negative_scales():
    with pytest.raises(UnknownNameError):
        robustness_iou(["grad"], None, None, {}, {"jpeg": [0, 1]})  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError):
        robustness_iou(["grad"], None, None, {}, {"noise": [0, -1]})  # type: ignore[arg-type]


def test_depth_configs_keep_the_latent_size():
    cfgs = depth_configs(PhantomConfig(size=128), [2, 3, 4, 5])
    assert {d: c.latent_channels for d, c in cfgs.items()} == {2: 2, 3: 8, 4: 32, 5: 128}
    with pytest.raises(InvalidParameterError):
        depth_configs(PhantomConfig(size=128), [8])  # 128 pixels cannot halve 8 times
    with pytest.raises(InvalidParameterError):
        depth_configs(PhantomConfig(size=128), [2], latent_values=1000)


def test_epoch_snapshots_are_one_run_of_the_cached_trainer(tmp_path, monkeypatch):
    """The last snapshot is exactly the model :func:`phantom_autoencoder` trains for the same
    config (the epoch callback does not change the training); earlier snapshots differ; a second
    call loads every snapshot from the cache without training."""
    from chexp.training import AutoencoderTraining, phantom_autoencoder

    monkeypatch.setenv("CHEXP_CACHE_DIR", str(tmp_path))
    cfg = AutoencoderTraining(phantom=PhantomConfig(size=32), n_train=8, n_val=4, epochs=2, batch_size=4,
                              latent_channels=2, width=4, depth=2)
    snapshots = epoch_snapshots(cfg, progress=False)
    assert [s.card.metrics["epoch"] for s in snapshots] == [1, 2]
    reference = phantom_autoencoder(cfg, progress=False).state_dict()
    last, first = snapshots[-1].state_dict(), snapshots[0].state_dict()
    assert all(torch.equal(last[k], reference[k]) for k in reference)
    assert not all(torch.equal(first[k], reference[k]) for k in reference)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("chexp.experiments.autoencoder_depth.train_autoencoder", no_training)
    again = epoch_snapshots(cfg, progress=False)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for a, b in zip(again, snapshots, strict=True)
               for k in reference)


def test_fit_calls_on_epoch_end_in_eval_mode():
    from chexp.training import fit
    from chexp.training.configs import Training

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    x = torch.randn(8, 2)
    calls = []
    fit(model, lambda idx: model(x[idx]).pow(2).mean(), 8, Training(epochs=3, batch_size=4, lr=1e-2), 0.0,
        desc="t", progress=False, on_epoch_end=lambda epoch, m: calls.append((epoch, m.training)))
    assert calls == [(1, False), (2, False), (3, False)]
