"""The modelled pair of ``chexp bench latent-shift``: realistic search lengths at xrv cost.

The torchxrayvision-sized pair (DenseNet121 + ResNetAE101 at 224 x 224) can only be built with
random weights here: its latent gradient is tiny (``|dz|`` about 1e-5), so every rule's
search runs to its lambda limit in a couple of evaluations, which says nothing about the
search. Instead, each image of a trained pair contributes its measured counts (the batched
search's forward passes and their sizes, the sequential walk's evaluations), and each count is
priced at the measured cost of that pass at xrv size:

* batched: ``gradient + sum over passes of pass_cost(batch size of the pass)``;
* sequential: ``gradient + evaluations x pass_cost(1)`` (one decode + classify per step);
* floor: ``gradient + pass_cost(n_frames)``.

``pass_cost`` is measured at a few batch sizes and linearly interpolated between them (a
pass's cost grows at most linearly with its size, so the interpolation never flatters the
batched search). Python overhead of the search's bookkeeping is not modelled.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["MODELLED_KIND", "EvalCosts", "modelled_image", "pass_sizes_needed"]

#: ``kind`` of a modelled pair in the JSON (a measured pair has ``"measured"``).
MODELLED_KIND = "modelled: eval counts from trained pairs x measured per-eval cost"


@dataclass(frozen=True)
class EvalCosts:
    """Measured costs of one image's Latent Shift steps on a model pair.

    Attributes:
        gradient_s: encode + decode + classify + backward of one image (seconds).
        pass_s: batch size -> seconds of one decode + classify pass of that many latents.
    """

    gradient_s: float
    pass_s: dict[int, float]

    def pass_cost(self, size: int) -> float:
        """Seconds of one pass of ``size`` latents: linear in ``size`` between (and beyond) the
        measured sizes."""
        sizes = sorted(self.pass_s)
        if len(sizes) == 1:
            return self.pass_s[sizes[0]] * size / sizes[0]
        # the measured segment holding ``size`` (the first or last one beyond the measured sizes)
        hi = min(max(bisect.bisect_left(sizes, size), 1), len(sizes) - 1)
        (k0, k1), (c0, c1) = sizes[hi - 1 : hi + 1], (self.pass_s[sizes[hi - 1]], self.pass_s[sizes[hi]])
        return c0 + (c1 - c0) * (size - k0) / (k1 - k0)

    def batched_seconds(self, pass_sizes: Iterable[int]) -> float:
        return self.gradient_s + sum(self.pass_cost(k) for k in pass_sizes)

    def sequential_seconds(self, evaluations: int) -> float:
        return self.gradient_s + evaluations * self.pass_cost(1)

    def as_dict(self) -> dict[str, Any]:
        return {"gradient_s": self.gradient_s, "pass_s": {str(k): v for k, v in sorted(self.pass_s.items())}}


def pass_sizes_needed(records: Iterable[dict[str, Any]], n_frames: int) -> list[int]:
    """Batch sizes to measure: 1 (a sequential step), ``n_frames`` (the floor's pass) and the
    largest pass of the measured records."""
    largest = max((k for r in records for k in r["batched"]["pass_sizes"]), default=1)
    return sorted({1, n_frames, largest})


def modelled_image(record: dict[str, Any], costs: EvalCosts, n_frames: int) -> dict[str, Any]:
    """One image of the modelled pair from one measured ``record`` (its counts) and ``costs``.

    Returns:
        The record's layout (``batched``, ``sequential`` if measured, ``floor_seconds``) with
        modelled seconds and the counts it was priced from.
    """
    batched = record["batched"]
    out: dict[str, Any] = {
        "image": record["image"],
        "batched": {
            "seconds": costs.batched_seconds(batched["pass_sizes"]),
            "evaluations": batched["evaluations"],
            "passes": batched["passes"],
            "pass_sizes": list(batched["pass_sizes"]),
        },
        "floor_seconds": costs.batched_seconds([n_frames]),
    }
    if "sequential" in record:
        n = record["sequential"]["evaluations"]
        out["sequential"] = {"seconds": costs.sequential_seconds(n), "evaluations": n}
    return out

