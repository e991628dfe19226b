"""IBA against Inverse IBA on images with two redundant regions: CheXplain-IBA Fig. 1.

:func:`inverse_cases` finds the cases (bilateral pleural effusions on phantoms, zones scored 3
in both lungs on cohen, Cardiomegaly boxes across the midline on NIH under paper),
:func:`case_maps` explains them, :func:`redundancy_table` puts Fig. 1 in numbers (the share of
each region a method finds, and the score drop when its top pixels are removed) and
:func:`beta_sweep` repeats that for several information weights beta.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import DataUnavailableError, UnsupportedProfileError
from ..metrics import iou, top_k_mask
from ..metrics.perturbation import GaussianBlur
from ..models.base import Classifier
from ..profiles import Profile
from .iba_setup import Setup

__all__ = ["REDUNDANT_TASKS", "beta_sweep", "case_maps", "inverse_cases", "redundancy_table", "stack_cases"]


def _sides(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image-left and image-right halves of a mask ``(H, W)``."""
    w = mask.shape[-1]
    left = mask.copy()
    left[:, w // 2 :] = False
    return left, mask & ~left


#: profile -> (task whose positives can hold two redundant regions, default extra tasks)
REDUNDANT_TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "phantom": ("Effusion", ("Cardiomegaly",)),  # bilateral pleural effusion
    "cohen": ("zone score 3", ("zone score 2",)),  # zones scored 3 in both lungs (paper Fig. 1 right)
    "paper": ("Cardiomegaly", ()),  # NIH box across both sides of the heart (paper Fig. 1 left)
}


def inverse_cases(
    profile: Profile, n_redundant: int = 2, other_tasks: Sequence[str] | None = None, seed: int = 0,
    min_side_share: float = 0.25, max_draws: int = 400,
) -> list[dict[str, Any]]:
    """Cases for Fig. 1: images with *two redundant regions* and one case per ``other_tasks``.

    Phantom: bilateral pleural effusions; cohen: zones scored 3 in both lungs; paper (NIH boxes,
    :class:`~chexp.profiles.paper.CheXplainPaperProfile`): Cardiomegaly boxes across the midline,
    the paper's "both sides of Cardiomegaly". A case is redundant when each image half holds at
    least ``min_side_share`` of the task's mask.

    Returns a list of dicts with ``task``, ``image (1, 1, H, W)``, ``mask (H, W)``, ``title``
    and ``redundant`` (bool).
    """
    if profile.name not in REDUNDANT_TASKS:
        raise UnsupportedProfileError(
            f"Fig. 1's redundant-region cases need masks of bilateral findings; profile {profile.name!r} "
            f"has none (supported: {', '.join(REDUNDANT_TASKS)})"
        )
    task, default_others = REDUNDANT_TASKS[profile.name]
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    draws, round_seed = 0, seed
    while len(cases) < n_redundant:
        s = profile.samples(16, seed=round_seed, task=task)
        round_seed += 1
        draws += 16
        for i in range(len(s)):
            mask = np.asarray(s.masks[task][i], bool)
            left, right = _sides(mask)
            share = min(left.sum(), right.sum()) / max(mask.sum(), 1)
            key = s.ids[i] if profile.name != "phantom" else f"{s.ids[i]}/{round_seed}"
            if share >= min_side_share and key not in seen and len(cases) < n_redundant:
                seen.add(key)
                cases.append({"task": task, "image": s.images[i : i + 1], "mask": mask, "redundant": True,
                              "title": f"{task}, both sides ({s.ids[i]})"})
        if draws >= max_draws and len(cases) < n_redundant:
            raise DataUnavailableError(
                f"only {len(cases)} of {n_redundant} images with {task!r} on both sides in {draws} draws "
                f"(min side share {min_side_share})"
            )
    for other in default_others if other_tasks is None else other_tasks:
        s = profile.samples(1, seed=seed, task=other)
        cases.append({"task": other, "image": s.images[:1], "mask": np.asarray(s.masks[other][0], bool),
                      "redundant": False, "title": f"{other} ({s.ids[0]})"})
    return cases


def case_maps(
    setup: Setup, cases: Sequence[Mapping[str, Any]], methods: Sequence[str] = ("IBA", "Inverse IBA")
) -> list[dict[str, torch.Tensor]]:
    """Maps of ``methods`` for each case of :func:`inverse_cases` (each with its own task)."""
    return [setup.explain(case["image"], case["task"], methods) for case in cases]


def stack_cases(
    cases: Sequence[Mapping[str, Any]], maps: Sequence[Mapping[str, torch.Tensor]]
) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[np.ndarray], list[str]]:
    """Cases and their maps as batches for plotting: ``(images, {method: maps}, masks, titles)``."""
    images = torch.cat([c["image"] for c in cases])
    stacked = {name: torch.cat([m[name] for m in maps]) for name in maps[0]} if maps else {}
    return images, stacked, [np.asarray(c["mask"]) for c in cases], [c["title"] for c in cases]


def _score(model: Classifier, images: torch.Tensor, target: str) -> torch.Tensor:
    with torch.no_grad():
        return model(images)[:, model.target_index(target)].detach().cpu()


def redundancy_table(
    setup: Setup, cases: Sequence[Mapping[str, Any]], maps: Sequence[Mapping[str, torch.Tensor]],
    methods: Sequence[str] = ("IBA", "Inverse IBA"),
) -> pd.DataFrame:
    """Fig. 1 in numbers, one row per case and method.

    Columns: ``found left`` / ``found right`` (share of each half of the mask that lies in the
    map's top-p pixels, p = mask area), ``weaker side`` (the smaller of the two: near 0 when a
    method marks one of two redundant regions only), ``IoU`` and ``score drop`` (target
    probability of the image minus that with the map's top-p pixels replaced by the blurred
    image, the paper's "remove the highlighted areas of both methods equally").
    """
    rows = []
    blur = GaussianBlur()
    for case, case_maps in zip(cases, maps, strict=True):
        mask = np.asarray(case["mask"], bool)
        image = case["image"].to(setup.device)
        base = _score(setup.classifier, image, case["task"])[0].item()
        left, right = _sides(mask)
        for name in methods:
            m = case_maps[name]
            top = top_k_mask(m, int(mask.sum()))[0].numpy()
            found = [float((top & side).sum() / side.sum()) if side.any() else float("nan") for side in (left, right)]
            removed = torch.where(torch.from_numpy(top)[None, None].to(setup.device), blur(image), image)
            rows.append({
                "case": case["title"], "method": name,
                "found left": found[0], "found right": found[1],
                "weaker side": float(np.nanmin(found)) if left.any() and right.any() else float("nan"),
                "IoU": float(iou(m, torch.from_numpy(mask)[None])[0]),
                "score": base,
                "score drop": base - _score(setup.classifier, removed, case["task"])[0].item(),
            })
    return pd.DataFrame(rows)


def beta_sweep(
    setup: Setup, cases: Sequence[Mapping[str, Any]], betas: Sequence[float],
    methods: Sequence[str] = ("IBA", "Inverse IBA"),
) -> pd.DataFrame:
    """:func:`redundancy_table` for every ``beta`` (the information weight; Inverse IBA's too).

    Returns the long table with a ``beta`` column: how the share of each redundant region found
    and the score drop depend on beta (the released code uses 10, 6 in its notebooks, and 30 for
    Inverse IBA in its evaluation: notebook 20 sweeps 1, 3, 10 and 30).
    """
    parts = []
    for beta in betas:
        for name in methods:
            method = setup.method(name, beta=float(beta), inverse_beta=float(beta))
            maps = [{name: method.attribute(c["image"].to(setup.device), c["task"]).detach().cpu()} for c in cases]
            table = redundancy_table(setup, cases, maps, (name,))
            table.insert(0, "beta", float(beta))
            parts.append(table)
    return pd.concat(parts, ignore_index=True)
