"""Dataset-scale evaluation on Dask (issue 15): the per-image loops of the evaluation notebooks
give the same tables with 2 local worker processes as in this process.

One LocalCluster (2 worker processes, 1 thread each) serves the whole module. Models are tiny and
untrained (seeded), images are 32 px phantoms.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch

from chexp.errors import ChexpError, InputRangeError
from chexp.experiments.batches import Recipe, map_batches, split_images
from chexp.experiments.worker_setup import allocate_for_torch, pinned_gpu
from chexp.models.small import ConvAutoencoder, SmallClassifier
from chexp.profiles import PhantomProfile

distributed = pytest.importorskip("distributed")

TASKS = ("Cardiomegaly", "Mass")


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def models() -> tuple[SmallClassifier, ConvAutoencoder]:
    torch.manual_seed(0)
    classifier = SmallClassifier(list(PhantomProfile.tasks), channels=(4, 4, 8)).eval()
    torch.manual_seed(1)
    return classifier, ConvAutoencoder(latent_channels=2, width=4, depth=2).eval()


@pytest.fixture(scope="module")
def per_task() -> dict:
    prof = PhantomProfile(size=32)
    return {t: prof.samples(2, seed=0, task=t) for t in TASKS}


# ------------------------------------------------------------------------------------------
# the map itself
# ------------------------------------------------------------------------------------------
def _pid_and_object(shared: object, batch: int) -> tuple[int, int, int]:
    return os.getpid(), id(shared), batch * 10


def _fresh_list() -> list[int]:
    return [1, 2, 3]


def _plugins(dask_worker: distributed.Worker) -> list[str]:
    return sorted(dask_worker.plugins)


def test_results_come_back_in_order_and_a_recipe_is_built_once_per_worker(client):
    out = map_batches(_pid_and_object, list(range(8)), Recipe(_fresh_list), client, progress=False,
                      sizes=[1] * 8, labels=[str(i) for i in range(8)])
    assert [r[2] for r in out] == [0, 10, 20, 30, 40, 50, 60, 70]
    objects = {}
    for pid, obj, _ in out:
        objects.setdefault(pid, set()).add(obj)
    assert all(len(ids) == 1 for ids in objects.values())  # one object per worker process, every task
    assert os.getpid() not in objects
    plugins = client.run(_plugins)  # each worker got its GPU and allocator set up (TorchWorker)
    assert len(plugins) == 2 and all("chexp-torch-worker" in names for names in plugins.values())
    here = map_batches(_pid_and_object, [0, 1], Recipe(_fresh_list), None, progress=False, sizes=[1, 1])
    assert [r[:2] for r in here] == [(os.getpid(), here[0][1])] * 2


def test_split_images_keeps_order_and_a_pickled_batch_carries_only_its_rows():
    import pickle

    x = torch.arange(5 * 16, dtype=torch.float32).view(5, 1, 4, 4)
    batches = split_images(("Mass",), x, [f"i{k}" for k in range(5)], 2, np.zeros((5, 4, 4), bool))
    assert [b.ids for b in batches] == [("i0", "i1"), ("i2", "i3"), ("i4",)]
    assert batches[2].label() == "Mass: image i4" and batches[0].label() == "Mass: images i0, i1"
    back = pickle.loads(pickle.dumps(batches[1]))
    assert torch.equal(back.images, x[2:4]) and back.images.untyped_storage().nbytes() == 2 * 16 * 4
    assert len(split_images(("Mass",), x, list("abcde"), None)) == 1 and split_images(("M",), x[:0], [], 2) == []
    with pytest.raises(ChexpError, match="batch_size"):
        split_images(("Mass",), x, list("abcde"), 0)


def test_each_worker_gets_its_own_gpu_and_a_torch_friendly_allocator():
    assert [pinned_gpu(i, None, 2) for i in range(4)] == ["0", "1", "0", "1"]
    assert pinned_gpu("SLURMCluster-3", "4,5", 8) == "5"  # SLURM's list wins over the count
    assert pinned_gpu("tcp://10.0.0.1:4000", None, 0) is None  # no GPU: nothing to pin
    assert pinned_gpu("worker", None, 3) == "0"
    assert allocate_for_torch()  # glibc (Linux): Dask's 64 KiB trim threshold made torch ~1.8x slower


# ------------------------------------------------------------------------------------------
# the evaluations: same table with 2 worker processes as in this process
# ------------------------------------------------------------------------------------------
def _csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False, float_format="%.17g")


def test_iou_table_is_identical_on_two_workers(client, models, per_task):
    from chexp.experiments.iou import compute_iou

    classifier, autoencoder = models
    methods = ["grad", "gradcam", "latentshift-max"]
    here = compute_iou(methods, classifier, autoencoder, per_task, batch_size=1, progress=False)
    there = compute_iou(methods, classifier, autoencoder, per_task, batch_size=1, progress=False, client=client)
    assert len(here) == len(TASKS) * len(methods) * 2 and here["iou"].between(0, 1).all()
    assert _csv(there) == _csv(here)


def test_a_failing_task_names_its_images(client, models, per_task):
    from chexp.experiments.iou import compute_iou

    classifier, autoencoder = models
    broken = {t: s for t, s in per_task.items()}
    mass = broken["Mass"]
    images = mass.images.clone()
    images[1] = 5000.0  # outside [-1024, 1024]: the classifier's input check fails on the worker
    broken["Mass"] = type(mass)(images, mass.labels, mass.targets, mass.masks, mass.ids)
    with pytest.raises(ChexpError, match=r"Mass: image phantom-1: InputRangeError") as info:
        compute_iou(["grad"], classifier, autoencoder, broken, batch_size=1, progress=False, client=client)
    assert isinstance(info.value.__cause__, InputRangeError)


def test_insertion_deletion_curves_are_identical_on_two_workers(client, models, per_task):
    from chexp.experiments.iba_setup import Setup
    from chexp.experiments.perturbation import perturbation_study
    from chexp.iba import fit_statistics

    classifier = models[0]
    layers = ("features.block1", "features.block2")  # the tiny classifier's blocks
    stats = fit_statistics(classifier, layers, PhantomProfile(size=32).training_images(16), 16, 16, False)
    setup = Setup(classifier, layers[-1], layers, dict(zip(layers, stats, strict=True)), torch.device("cpu"),
                  {"steps": 3})
    kwargs = {"methods": ["Gradients", "IBA"], "curve_points": 8, "progress": False, "image_batch": 1}
    here = perturbation_study(setup, per_task, **kwargs)
    there = perturbation_study(setup, per_task, client=client, **kwargs)
    assert there.tasks == here.tasks == ["Cardiomegaly"] * 2 + ["Mass"] * 2
    assert _csv(there.table()) == _csv(here.table()) and _csv(there.table_per_task()) == _csv(here.table_per_task())
    for mode in ("insertion", "deletion"):
        for name, curves in getattr(here, mode).items():
            assert np.array_equal(getattr(there, mode)[name].scores, curves.scores) and curves.scores.shape == (4, 9)


def test_cascading_randomization_is_identical_on_two_workers(client, models, per_task):
    from chexp.experiments.randomization import randomization_study, randomization_table

    classifier, autoencoder = models
    images = torch.cat([s.images for s in per_task.values()])
    kwargs = {"seed": 3, "progress": False, "batch_size": 3}
    here = randomization_study(["grad", "gradcam"], classifier, autoencoder, images, "Mass", **kwargs)
    there = randomization_study(["grad", "gradcam"], classifier, autoencoder, images, "Mass", client=client, **kwargs)
    assert _csv(randomization_table(there)) == _csv(randomization_table(here))
    for name, result in here.items():
        assert result.spearman.shape == (len(result.steps), 4) and result.steps == there[name].steps
        assert np.array_equal(there[name].ssim, result.ssim) and np.array_equal(there[name].pearson, result.pearson)


def test_sensitivity_n_is_identical_on_two_workers(client, models, per_task):
    from chexp.experiments.iba_setup import Setup
    from chexp.experiments.regression import RegressionCases, sensitivity_study

    images = torch.cat([s.images for s in per_task.values()])
    n = len(images)
    cases = RegressionCases(images, np.zeros((n, 6, 32, 32), bool), np.zeros((n, 6), np.float32),
                            [f"phantom-{i}" for i in range(n)])
    setup = Setup(models[0], "features.block2", ("features.block2",), {}, torch.device("cpu"))
    maps = {kind: torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(kind_seed))
            for kind, kind_seed in (("a", 1), ("b", 2))}
    here = sensitivity_study(setup, cases, maps, points=5, n_masks=6, progress=False)
    there = sensitivity_study(setup, cases, maps, points=5, n_masks=6, progress=False, batch_size=3, client=client)
    assert len(here) == 2 * 5 and set(here["map"]) == {"a", "b"}
    assert _csv(there) == _csv(here)


# ------------------------------------------------------------------------------------------
# benchmarks
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "deletion", "--batch-size", "0"], "argument --batch-size: 0 is not a positive integer"),
    (["bench", "deletion", "--pixels-per-step", "-3"], "argument --pixels-per-step: -3 is not a positive integer"),
    (["bench", "deletion", "--size", "x"], "argument --size: 'x' is not an integer"),
    (["bench", "dataset-scale", "--workers", "0"], "argument --workers: 0 is not a positive integer"),
])
def test_bench_counts_are_positive_integers(argv, message, capsys):
    from chexp.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
