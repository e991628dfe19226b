"""Cascading randomization (Adebayo et al. 2018; Gifsplanation Fig. 5).

Layers are re-initialised one step at a time from the output end back, cumulatively, on a
*copy* of the model (the model passed in is never changed), and the explanation is recomputed
after each step. Each map is compared with the map of the intact model by Pearson and Spearman
correlation and SSIM. The method is any callable ``explain(model) -> maps (B, 1, H, W)``, so
Latent Shift, IBA and every baseline work the same way, e.g.::

    explain = lambda m: InputGradient(m).attribute(images, "Cardiomegaly")
    result = cascading_randomization(model, explain)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import structural_similarity
from torch import nn

from ..errors import UnknownLayerError
from ..progress import tqdm
from ._util import as_maps, pearson, spearman


def parameterized_layers(model: nn.Module) -> list[str]:
    """Names of the leaf modules that own parameters, output end first (reverse registration
    order, which is execution order for sequential networks such as DenseNet and ResNet)."""
    names = [
        n
        for n, m in model.named_modules()
        if n and not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))
    ]
    return names[::-1]


def randomize_module(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every parameter of ``module`` in place: ``reset_parameters()`` where the
    module has it (PyTorch's default initialisation; BatchNorm also resets its running
    statistics), else normal noise with each parameter's own standard deviation. Seeded through
    ``torch.manual_seed`` from ``generator`` so that runs repeat."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG state alone
        torch.manual_seed(seed)
        for m in module.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
            elif any(True for _ in m.parameters(recurse=False)):
                with torch.no_grad():
                    for p in m.parameters(recurse=False):
                        p.normal_(0.0, float(p.std()) if p.numel() > 1 else 1.0)


def _normalize01(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """SSIM (scikit-image, 7x7 window) between maps ``(B, H, W)``, each min-max scaled to [0, 1]."""
    return np.array(
        [
            structural_similarity(_normalize01(x.double().numpy()), _normalize01(y.double().numpy()), data_range=1.0)
            for x, y in zip(a, b, strict=True)
        ]
    )


@dataclass(frozen=True)
class RandomizationResult:
    """Similarity of each step's maps with the intact model's maps.

    Attributes:
        steps: ``S + 1`` labels: ``"original"`` then the layer (group) randomised at each step.
        pearson, spearman, ssim: ``(S + 1, B)`` arrays; row 0 compares the original with itself.
        maps: ``(S + 1, B, H, W)`` maps, if kept.
    """

    steps: list[str]
    pearson: np.ndarray
    spearman: np.ndarray
    ssim: np.ndarray
    maps: np.ndarray | None


def cascading_randomization(
    model: nn.Module,
    explain: Callable[[nn.Module], torch.Tensor],
    steps: Sequence[str | Sequence[str]] | None = None,
    absolute: bool = True,
    seed: int = 0,
    keep_maps: bool = False,
    progress: bool = True,
) -> RandomizationResult:
    """Cascading randomization of ``model`` for the explanation ``explain``.

    Args:
        model: the network (left untouched: a deep copy is randomised).
        explain: ``explain(model) -> maps (B, 1, H, W)`` for the model it is given.
        steps: what to randomise at each step, output end first: module names (any level, e.g.
            ``"net.classifier"``, ``"net.features.denseblock4"``) or lists of names randomised
            together. Default: every parameterised leaf module (:func:`parameterized_layers`).
        absolute: compare ``|maps|`` (Adebayo et al.'s default for gradient-type maps).
        seed: seeds the re-initialisation.
        keep_maps: return every map.
        progress: progress bar over steps.
    """
    work = copy.deepcopy(model)
    work.eval()
    modules = dict(work.named_modules())
    layers = steps if steps is not None else parameterized_layers(work)
    plan = [[s] if isinstance(s, str) else list(s) for s in layers]
    for group in plan:
        for name in group:
            if name not in modules or not name:
                raise UnknownLayerError(name, [n for n in modules if n])
    gen = torch.Generator().manual_seed(seed)

    def run() -> torch.Tensor:
        maps = as_maps(explain(work)).double()
        return maps.abs() if absolute else maps

    original = run()
    flat0 = original.reshape(len(original), -1)
    labels, p_rows, s_rows, ss_rows, kept = ["original"], [], [], [], []

    def record(maps: torch.Tensor) -> None:
        flat = maps.reshape(len(maps), -1)
        p_rows.append(pearson(flat0, flat).numpy())
        s_rows.append(spearman(flat0, flat).numpy())
        ss_rows.append(ssim(original, maps))
        if keep_maps:
            kept.append(maps.numpy())

    record(original)
    for group in tqdm(plan, disable=not progress, desc="cascading randomization"):
        for name in group:
            randomize_module(modules[name], gen)
        labels.append("+".join(group))
        record(run())
    return RandomizationResult(
        labels, np.stack(p_rows), np.stack(s_rows), np.stack(ss_rows), np.stack(kept) if keep_maps else None
    )
