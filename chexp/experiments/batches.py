"""Per-image work over batches of images, in this process or as Dask tasks (issue 15).

The evaluation notebooks' per-image loops (maps + IoU, insertion/deletion, cascading
randomization) cut their images into :class:`ImageBatch` es and hand them to
:func:`map_batches`, which runs one function per batch:

* ``client=None``: here, one batch after the other (the single-process path).
* a :class:`distributed.Client`: one Dask task per batch. What every batch needs (models, a
  :class:`~chexp.experiments.iba_setup.Setup`, settings: ``shared``) reaches each worker *once*
  (scattered to every worker, not pickled into each task); a :class:`Recipe` instead of an object
  is built on each worker the first time a task needs it and then kept there (so a worker loads
  its models itself, e.g. from the model cache, on its own GPU). Batches travel one by one
  (compact copies of their rows). Results come back in the batches' order whatever order the
  tasks finish in; a progress bar counts finished images.

Identical results. A batch is the same unit of work in both paths: the experiments form their
batches before choosing the path, so every batch is computed by the same function on the same
images, and the results are the same numbers. Batch composition does matter to some numbers and
is therefore never changed by the path: ties between equal map values are ordered by a seeded
draw over the whole batch (:func:`~chexp.metrics.localization.random_tie_order`; per-image
seeds would change today's numbers), and a batched convolution need not give bit-identical
results for another batch size. Other seeds are per image already (IBA's noise) or the same for
every image (sensitivity-N's masks, the randomised weights of cascading randomization). The
tasks run with this process's number of torch threads (``threads``): a reduction split over
another number of threads can round differently, and a Latent Shift search can turn that into
another lambda.

Workers. :func:`map_batches` registers :class:`~chexp.experiments.worker_setup.TorchWorker` on
the client: each worker process sees one GPU (``CUDA_VISIBLE_DEVICES`` chosen by
:func:`~chexp.experiments.worker_setup.pinned_gpu` from the worker's index), so
``device="cuda"`` means that worker's own GPU and a model sent from a ``cuda`` process lands
there too. Workers that already pin a GPU (one entry in ``CUDA_VISIBLE_DEVICES``, as SLURM
sets it) keep it. Its allocator is set for torch (Dask's default makes torch work about 1.8
times slower, see :mod:`~chexp.experiments.worker_setup`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import torch

from ..errors import InvalidParameterError, TaskFailedError
from ..progress import tqdm

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ImageBatch", "Recipe", "map_batches", "split_images"]

T = TypeVar("T")
B = TypeVar("B")
R = TypeVar("R")

#: ids named in a failed task's message before ``...``
_IDS_NAMED = 10


@dataclass(frozen=True)
class Recipe(Generic[T]):
    """How to build an object on a worker: ``build(*args, **dict(kwargs))``, once per worker.

    ``build`` must be importable by the workers (a module-level function or class) and the
    arguments picklable; the recipe is the key of the worker's cache, so they must be hashable
    too. Example: ``Recipe(chexp.profiles.get_profile, ("phantom",), (("size", 64),))`` gives each
    worker its own profile object, whose models it loads (from the model cache) on first use.
    """

    build: Callable[..., T]
    args: tuple[Hashable, ...] = ()
    kwargs: tuple[tuple[str, Hashable], ...] = ()

    def __call__(self) -> T:
        return self.build(*self.args, **dict(self.kwargs))


#: Objects built from recipes in this process (on a worker: once per worker process).
_BUILT: dict[Recipe[Any], Any] = {}


@dataclass(frozen=True)
class _Sealed:
    """What :func:`map_batches` sends to the workers, pickled as one object: Dask would take a
    tuple or a torch module apart (a module's ``__dict__`` by its generic serializer, which turns
    the hook registries into plain dicts that the module can no longer register hooks in)."""

    value: Any


def _resolve(shared: Any) -> Any:
    """``shared``, or the object its :class:`Recipe` builds (built once per process)."""
    if isinstance(shared, _Sealed):
        shared = shared.value
    if not isinstance(shared, Recipe):
        return shared
    if shared not in _BUILT:
        _BUILT[shared] = shared()
    return _BUILT[shared]


@dataclass(frozen=True)
class ImageBatch:
    """Some rows of a group of images: the unit of work of :func:`map_batches`.

    Attributes:
        key: what the rows belong to, e.g. ``("Cardiomegaly",)`` or ``("grad", "Mass")``.
        ids: the images' identifiers (named when the batch fails).
        images: ``(B, 1, H, W)``.
        masks: ``(B, H, W)`` ground truth of the rows, or ``None``.
        maps: ``(B, 1, H, W)`` attribution maps of the rows (evaluated by the batch), or ``None``.

    Pickled (sent to a worker) with a compact CPU copy of its rows: a slice of a larger tensor
    would otherwise carry the whole tensor along.
    """

    key: tuple[str, ...]
    ids: tuple[str, ...]
    images: torch.Tensor
    masks: np.ndarray | None = field(default=None)
    maps: torch.Tensor | None = field(default=None)

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "images": _compact(self.images), "maps": None if self.maps is None else
                _compact(self.maps), "masks": None if self.masks is None else np.array(self.masks)}

    def label(self) -> str:
        """``"Cardiomegaly: images phantom-0, phantom-1"`` (at most :data:`_IDS_NAMED` ids)."""
        ids = ", ".join(self.ids[:_IDS_NAMED]) + (", ..." if len(self.ids) > _IDS_NAMED else "")
        return f"{' / '.join(self.key)}: image{'s' if len(self.ids) > 1 else ''} {ids}"


def _compact(t: torch.Tensor) -> torch.Tensor:
    """A CPU copy of ``t`` that owns only its own elements."""
    return t.detach().cpu().clone()


def split_images(
    key: tuple[str, ...], images: torch.Tensor, ids: Sequence[str], batch_size: int | None,
    masks: np.ndarray | None = None, maps: torch.Tensor | None = None,
) -> list[ImageBatch]:
    """``images`` (and their ``masks``, ``maps``) in batches of ``batch_size`` rows, in order (``None``:
    one batch of all of them; no images: no batch).

    Raises:
        InvalidParameterError: ``batch_size`` is below 1.
    """
    if batch_size is not None and batch_size < 1:
        raise InvalidParameterError(f"batch_size must be at least 1 (or None), got {batch_size}")
    step = batch_size or max(len(images), 1)
    return [ImageBatch(key, tuple(ids[s : s + step]), images[s : s + step],
                       None if masks is None else masks[s : s + step], None if maps is None else maps[s : s + step])
            for s in range(0, len(images), step)]


# --------------------------------------------------------------------------------------------
# the map
# --------------------------------------------------------------------------------------------
def _run_batch(fn: Callable[[Any, B], R], shared: Any, batch: B, threads: int) -> R:
    """One task: ``fn(shared object, batch)`` (the shared object built here if a recipe) with
    ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    return fn(_resolve(shared), batch)


def map_batches(
    fn: Callable[[Any, B], R],
    batches: Sequence[B],
    shared: Any = None,
    client: Client | None = None,
    desc: str = "batches",
    progress: bool = True,
    sizes: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    threads: int | None = None,
) -> list[R]:
    """``[fn(shared, batch) for batch in batches]``, here or as one Dask task per batch.

    Args:
        fn: ``(shared, batch) -> result``; with a client a module-level function (workers
            import it).
        batches: the units of work (e.g. :class:`ImageBatch` es), in order.
        shared: what every batch needs (models, settings), or a :class:`Recipe` building it.
            With a client it is sent to every worker once, before the tasks.
        client: ``None``: run here, one batch after the other; else the Dask client whose
            workers run the batches.
        desc: the progress bar's label.
        sizes: progress units of each batch (default: ``len(batch)``, images).
        labels: names the failing batch in the error (default: ``batch.label()``).
        threads: with a client, the torch intra-op threads of each task (default: this
            process's, :func:`torch.get_num_threads`). The default gives bit-identical results:
            a reduction split over another number of threads can round differently, and a
            Latent Shift search can turn that into another lambda. 1 is fastest when the
            workers already fill the cores.

    Returns:
        the results, in the order of ``batches``.

    Raises:
        TaskFailedError: with a client, a task failed (or its worker died); the message names the
            batch's images and the error, which is chained as the cause. Without a client an
            error propagates as it is.
    """
    sizes = [len(b) for b in batches] if sizes is None else list(sizes)  # type: ignore[arg-type]
    bar = tqdm(total=sum(sizes), desc=desc, disable=not progress)
    try:
        if client is None:
            obj = _resolve(shared)
            results = []
            for batch, size in zip(batches, sizes, strict=True):
                results.append(fn(obj, batch))
                bar.update(size)
            return results
        names = [b.label() for b in batches] if labels is None else list(labels)  # type: ignore[attr-defined]
        return _on_cluster(client, fn, batches, shared, desc, sizes, names, bar,
                           torch.get_num_threads() if threads is None else threads)
    finally:
        bar.close()


def _on_cluster(
    client: Client, fn: Callable[[Any, B], R], batches: Sequence[B], shared: Any, desc: str,
    sizes: Sequence[int], labels: Sequence[str], bar: Any, threads: int,
) -> list[R]:
    from distributed import as_completed

    from .worker_setup import TorchWorker

    client.register_plugin(TorchWorker(), name=TorchWorker.name)
    [handle] = client.scatter([_Sealed(shared)], broadcast=True, hash=False)
    run = uuid.uuid4().hex[:8]
    futures = [client.submit(_run_batch, fn, handle, batch, threads, key=f"chexp-{desc}-{run}-{i}", pure=False)
               for i, batch in enumerate(batches)]
    order = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    try:
        for future in as_completed(futures):
            i = order[future.key]
            try:
                results[i] = future.result()
            except Exception as error:  # the task's own error, or the worker's loss (KilledWorker)
                raise TaskFailedError(
                    f"a Dask task of {desc!r} failed on {labels[i]}: {type(error).__name__}: {error}"
                ) from error
            bar.update(sizes[i])
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return results
