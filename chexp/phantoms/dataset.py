"""Generating phantom sets: per-sample random streams, batched rendering, :class:`PhantomSet`.

This module does not import torch (worker processes import it); the torch dataset is in
:mod:`chexp.phantoms.torch_dataset`."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import PhantomConfigError
from ..progress import tqdm
from .anatomy import ANATOMY_SPACE, N_ANATOMY_UNIFORMS, derive, render_anatomy
from .config import FINDING_INDEX, FINDINGS, PhantomConfig, check_finding_names
from .exposure import add_noise, expose, noise_field
from .findings import FINDING_RENDERERS, MASK_EPS, N_FINDING_UNIFORMS

#: Names of the independent random streams of every sample, in spawn order.
STREAMS: tuple[str, ...] = ("anatomy", *FINDINGS, "noise")


@dataclass
class Draws:
    """All random numbers of a batch of samples, taken from their per-sample streams."""

    anatomy: np.ndarray  # (B, N_ANATOMY_UNIFORMS) uniforms
    texture: np.ndarray  # (B, S, S) standard normal (lung markings)
    findings: np.ndarray  # (B, 5, N_FINDING_UNIFORMS) uniforms; [:, k, 0] decides label k
    noise: np.ndarray  # (B, 2, S, S) standard normal


def draw(seed: int, indices: Iterable[int], size: int) -> Draws:
    """Random numbers of samples ``indices``; sample i uses only ``SeedSequence([seed, i])``,
    spawned into one child stream per entry of :data:`STREAMS`."""
    idx = list(indices)
    b = len(idx)
    anat = np.empty((b, N_ANATOMY_UNIFORMS))
    tex = np.empty((b, size, size), np.float32)
    fnd = np.empty((b, len(FINDINGS), N_FINDING_UNIFORMS))
    noi = np.empty((b, 2, size, size), np.float32)
    for row, i in enumerate(idx):
        gens = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, i]).spawn(len(STREAMS))]
        anat[row] = gens[0].random(N_ANATOMY_UNIFORMS)
        tex[row] = gens[0].standard_normal((size, size), dtype=np.float32)
        for k in range(len(FINDINGS)):
            fnd[row, k] = gens[1 + k].random(N_FINDING_UNIFORMS)
        noi[row] = gens[-1].standard_normal((2, size, size), dtype=np.float32)
    return Draws(anat, tex, fnd, noi)


def sample_labels(u: np.ndarray, config: PhantomConfig) -> np.ndarray:
    """Labels (B, 5) bool from the label uniforms ``u`` (B, 5), honouring device co-occurrence."""
    prev = np.asarray(config.prevalence)
    labels = u < prev[None, :]
    dev = FINDING_INDEX["Support Devices"]
    if config.device_cooccurrence is not None:
        name, p1, p0 = config.device_cooccurrence
        p = np.where(labels[:, FINDING_INDEX[name]], p1, p0)
        labels[:, dev] = u[:, dev] < p
    return labels


@dataclass
class PhantomSet:
    """A generated set of N phantoms.

    Attributes:
        images: float32 (N, 1, S, S) in [-1024, 1024] (torchxrayvision convention: dense = bright).
        labels: float32 (N, 5) in {0, 1}, columns :data:`FINDINGS`; label k is 1 exactly when
            ``masks[:, k]`` is not empty.
        masks: bool (N, 5, S, S): the pixels where finding k changes image i.
        lungs: bool (N, S, S): lung fields of the normal anatomy (outside the normal heart).
        heart: bool (N, S, S): the normal cardiac silhouette (Cardiomegaly adds its mask to it).
        config, seed, start: how the set was made (sample i of the set is sample ``start + i``
            of the stream ``seed``); disable: findings switched off when rendering.
        params: per-sample anatomy parameters, name -> (N,) float64 (e.g. ``"ctr"``, the
            normal cardiothoracic ratio).
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    lungs: np.ndarray
    heart: np.ndarray
    config: PhantomConfig
    seed: int
    start: int = 0
    disable: tuple[str, ...] = ()
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def findings(self) -> tuple[str, ...]:
        return FINDINGS

    def sha256(self) -> str:
        """Content hash of images, labels and all masks (hex), for provenance."""
        h = hashlib.sha256()
        for arr in (self.images, self.labels, self.masks, self.lungs, self.heart):
            a = np.ascontiguousarray(arr)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def subset(self, rows: np.ndarray | slice) -> PhantomSet:
        """The samples ``rows`` (``start`` is kept for a contiguous slice, else set to -1)."""
        start = -1
        if isinstance(rows, slice):
            s0, _, step = rows.indices(len(self))
            start = self.start + s0 if step == 1 and self.start >= 0 else -1
        return PhantomSet(
            self.images[rows],
            self.labels[rows],
            self.masks[rows],
            self.lungs[rows],
            self.heart[rows],
            self.config,
            self.seed,
            start,
            self.disable,
            {k: v[rows] for k, v in self.params.items()},
        )


def _copy(ps: PhantomSet, rows: slice) -> PhantomSet:
    """``ps.subset(rows)`` with arrays of its own (never views of ``ps``)."""
    sub = ps.subset(rows)
    return PhantomSet(sub.images.copy(), sub.labels.copy(), sub.masks.copy(), sub.lungs.copy(), sub.heart.copy(),
                      sub.config, sub.seed, sub.start, sub.disable, {k: v.copy() for k, v in sub.params.items()})


class RecentSets:
    """The phantom sets this process generated last, to serve a later request that lies inside
    one of them (same stream, settings and disabled findings) without rendering it again.

    Models trained in one process share their data: the autoencoder's training set is the first
    2000 images of the classifier's 3000, the bottleneck and depth studies train several models on
    one set. Sets are kept as private copies and every hit is a fresh copy, so a caller that
    changes its arrays changes nothing here. Least recently used sets are dropped beyond
    ``max_bytes`` in all; sets under ``min_images`` (cheap to render) are not kept.
    """

    def __init__(self, max_bytes: int = 1 << 30, min_images: int = 256) -> None:
        self.max_bytes = max_bytes
        self.min_images = min_images
        self._sets: OrderedDict[tuple, PhantomSet] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _bytes(ps: PhantomSet) -> int:
        return sum(a.nbytes for a in (ps.images, ps.labels, ps.masks, ps.lungs, ps.heart))

    def get(self, n: int, seed: int, config: PhantomConfig, start: int, disable: tuple[str, ...]) -> PhantomSet | None:
        """Samples ``start .. start + n - 1`` of the stream, copied from a kept set, or ``None``."""
        with self._lock:
            for key, ps in self._sets.items():
                if key[:3] == (seed, config, disable) and ps.start <= start and start + n <= ps.start + len(ps):
                    self._sets.move_to_end(key)
                    return _copy(ps, slice(start - ps.start, start - ps.start + n))
        return None

    def put(self, ps: PhantomSet) -> None:
        """Keep a private copy of ``ps`` (when it is big enough to be worth it and fits)."""
        size = self._bytes(ps)
        if len(ps) < self.min_images or size > self.max_bytes:
            return
        kept = _copy(ps, slice(None))
        with self._lock:
            self._sets[(ps.seed, ps.config, ps.disable, ps.start, len(ps))] = kept
            while sum(self._bytes(s) for s in self._sets.values()) > self.max_bytes:
                self._sets.popitem(last=False)

    def clear(self) -> None:
        """Forget every kept set (frees their memory)."""
        with self._lock:
            self._sets.clear()


#: The sets :func:`generate` reuses (``recent_sets.clear()`` frees them).
recent_sets = RecentSets()


def _render_batch(
    seed: int, indices: np.ndarray, config: PhantomConfig, disable: tuple[str, ...]
) -> tuple[np.ndarray, ...]:
    size = config.size
    d = draw(seed, indices, size)
    p = derive(ANATOMY_SPACE.draw(d.anatomy))
    anat = render_anatomy(p, d.texture)
    labels = sample_labels(d.findings[:, :, 0], config)
    density = anat.density.copy()
    masks = np.zeros((len(indices), len(FINDINGS), size, size), dtype=bool)
    for k, (name, finding) in enumerate(FINDING_RENDERERS.items()):
        if name in disable:
            labels[:, k] = False
            continue
        rows = np.flatnonzero(labels[:, k])
        if rows.size == 0:
            continue
        delta = finding.render(finding.space.draw(d.findings[rows, k, 1:]), anat.take(rows))
        mask = np.abs(delta) > MASK_EPS
        density[rows] += np.where(mask, delta, 0.0).astype(np.float32)
        masks[rows, k] = mask
        labels[rows, k] = mask.any(axis=(1, 2))
    image = add_noise(expose(density, p), noise_field(d.noise, p), p)
    return image[:, None], labels.astype(np.float32), masks, anat.lungs, anat.heart, p.as_dict()


def _render_job(job: tuple) -> tuple[np.ndarray, ...]:
    return _render_batch(*job)


def generate(
    n: int,
    seed: int = 0,
    config: PhantomConfig | None = None,
    *,
    start: int = 0,
    disable: Iterable[str] | str = (),
    chunk: int | None = None,
    progress: bool | None = None,
    workers: int | None = None,
) -> PhantomSet:
    """Generate ``n`` phantoms: samples ``start .. start + n - 1`` of the stream ``seed``.

    Sample i depends only on ``(seed, i)`` and the config, so ``generate(10, s)`` equals the
    first 10 of ``generate(1000, s)``, and ``generate(10, s, start=5)`` equals its rows 5..14.
    A request inside a set this process generated recently is copied from it
    (:data:`recent_sets`), not rendered again; the result is the same.

    Args:
        n: number of samples (>= 0).
        seed: non-negative int.
        config: :class:`PhantomConfig` (default ``PhantomConfig()``: 128 px, prevalence 0.3).
        start: index of the first sample (use disjoint ranges for train/test splits).
        disable: findings not rendered: the same samples with these findings switched off
            (their labels 0, masks empty; everything else, devices included, identical). Use it
            for the unaltered counterpart of an image.
        chunk: samples rendered at once (default: about 4 M pixels, or n / workers when less).
        progress: show a tqdm bar (default: when n >= 2000).
        workers: processes rendering chunks in parallel (default: up to 4 CPUs whenever the set
            spans more than one chunk, else 1). Needs the "fork" start method and a process that
            may have children (not a daemonic one, such as a Dask worker), else serial. The
            result does not depend on it.

    Raises:
        UnknownNameError: an unknown name in ``disable``.
        PhantomConfigError: negative ``n``, ``seed`` or ``start``.
    """
    config = PhantomConfig() if config is None else config
    if not isinstance(config, PhantomConfig):
        raise PhantomConfigError(f"config must be a PhantomConfig, got {type(config).__name__}")
    disable_t = check_finding_names(disable, "finding to disable")
    for value, what in ((n, "n"), (seed, "seed"), (start, "start")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise PhantomConfigError(f"{what} must be a non-negative int, got {value!r}")
    kept = recent_sets.get(int(n), int(seed), config, int(start), disable_t) if n else None
    if kept is not None:
        return kept
    size = config.size
    full = max(8, (1 << 22) // (size * size))
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if n > (chunk or full) else 1
    if chunk is None:  # about 4 M pixels, or an even share per worker when that is smaller
        chunk = min(full, -(-n // workers)) if workers > 1 else full
    starts = list(range(start, start + n, chunk))
    jobs = [(int(seed), np.arange(lo, min(lo + chunk, start + n)), config, disable_t) for lo in starts]
    parts = []
    bar = tqdm(total=n, desc="phantoms", unit="img", disable=not (n >= 2000 if progress is None else progress))
    # fork (not spawn: that would re-run an unguarded __main__); children use only numpy/scipy
    if (workers > 1 and len(jobs) > 1 and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon):
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
            for job, part in zip(jobs, pool.map(_render_job, jobs), strict=True):
                parts.append(part)
                bar.update(len(job[1]))
    else:
        for job in jobs:
            parts.append(_render_job(job))
            bar.update(len(job[1]))
    bar.close()
    if parts:
        images, labels, masks, lungs, heart = (np.concatenate([p[j] for p in parts]) for j in range(5))
        params = {k: np.concatenate([p[5][k] for p in parts]) for k in parts[0][5]}
    else:
        images = np.zeros((0, 1, size, size), np.float32)
        labels = np.zeros((0, len(FINDINGS)), np.float32)
        masks = np.zeros((0, len(FINDINGS), size, size), bool)
        lungs = heart = np.zeros((0, size, size), bool)
        params = {}
    result = PhantomSet(images, labels, masks, lungs, heart, config, int(seed), int(start), disable_t, params)
    recent_sets.put(result)
    return result
