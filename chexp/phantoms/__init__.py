"""Synthetic "phantom" frontal chest radiographs with pixel-exact finding masks.

The offline default data of chexp and the ground truth of its explanation benchmarks.

>>> from chexp.phantoms import FINDINGS, PhantomConfig, generate
>>> ps = generate(n=8, seed=0, config=PhantomConfig(size=64))
>>> ps.images.shape, ps.labels.shape, ps.masks.shape
((8, 1, 64, 64), (8, 5), (8, 5, 64, 64))

Modules: :mod:`.config` (names, :class:`PhantomConfig`), :mod:`.anatomy` (normal chest),
:mod:`.findings` (one class per finding), :mod:`.exposure` (film curve and noise),
:mod:`.dataset` (:func:`generate`, :class:`PhantomSet`), :mod:`.torch_dataset`
(:class:`PhantomDataset`).
"""

from ..errors import PhantomConfigError
from .config import FINDINGS, PhantomConfig
from .dataset import STREAMS, PhantomSet, generate
from .findings import FINDING_RENDERERS, MASK_EPS


def __getattr__(name: str):
    # PhantomDataset needs torch; import it only when asked for (worker processes skip torch)
    if name == "PhantomDataset":
        from .torch_dataset import PhantomDataset

        return PhantomDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FINDINGS",
    "FINDING_RENDERERS",
    "MASK_EPS",
    "STREAMS",
    "PhantomConfig",
    "PhantomConfigError",
    "PhantomDataset",
    "PhantomSet",
    "generate",
]
