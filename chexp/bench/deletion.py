"""Deletion curve time against the classifier forward passes it needs.

Builds the torchxrayvision DenseNet121 architecture (untrained: weights cannot be downloaded
here; timing does not depend on weights), one random image and map, and times
:func:`chexp.metrics.perturbation.deletion` at ``--pixels-per-step``. It then times the same
number of classifier forward passes, in the same batch sizes, on a fixed batch (no perturbation
work). ``ratio = seconds / forward_seconds`` is the overhead of building perturbed images.

A full 224 x 224 curve at 25 pixels per step is 2008 forward passes (minutes on a laptop CPU),
so by default only the first ``--steps`` points are timed; the per-step overhead is constant,
so the ratio does not depend on it. ``--steps 0`` times the full curve. ``--size`` below 224
(the released weights' side) gives a quick run: the network ends in a global average pool, so
any side of at least 32 pixels (it halves the image five times) runs.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING

from ..cli.options import positive_int

if TYPE_CHECKING:
    from ..models.base import Classifier

#: Smallest image side DenseNet121 runs at (five halvings leave one pixel).
MIN_SIZE = 32


def _model(size: int) -> Classifier:
    """The DenseNet121 architecture (random weights) for ``size`` x ``size`` images."""
    from ..models.xrv import densenet121_architecture

    model = densenet121_architecture()
    model.input_size = size
    return model


def _side(text: str) -> int:
    """``--size``: an integer of at least :data:`MIN_SIZE`."""
    side = positive_int(text)
    if side < MIN_SIZE:
        raise argparse.ArgumentTypeError(
            f"{side} is too small: DenseNet121 halves the image five times, so the side must be at least {MIN_SIZE}")
    return side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=_side, default=224,
                        help=f"image side, at least {MIN_SIZE} (default 224, the released weights' side)")
    parser.add_argument("--pixels-per-step", type=positive_int, default=25, help="pixels deleted per step (default 25)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="perturbed images per forward pass")
    parser.add_argument("--steps", type=int, default=64, help="curve points timed; 0 = the full curve")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..metrics.perturbation import deletion
    from ..provenance import provenance

    torch.manual_seed(0)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = _model(args.size).to(device).eval()
    target = next(t for t in model.targets if t)
    size = args.size
    image = (torch.rand(1, 1, size, size, device=device) * 2 - 1) * 1024
    saliency = torch.rand(1, 1, size, size, device=device)
    n_pix = size * size
    full = -(-n_pix // args.pixels_per_step)
    steps = full if args.steps <= 0 else min(args.steps, full)
    n_forward = steps + 1

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():  # warm-up (allocator, cuDNN autotune, thread pools)
        model(image.expand(min(args.batch_size, n_forward), -1, -1, -1).contiguous())
    sync()
    t0 = time.perf_counter()
    curve = deletion(
        model, image, saliency, target, pixels_per_step=args.pixels_per_step,
        batch_size=args.batch_size, max_steps=steps, progress=False,
    )
    sync()
    seconds = time.perf_counter() - t0

    fixed = image.expand(args.batch_size, -1, -1, -1).contiguous()
    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, n_forward, args.batch_size):
            model(fixed[: min(args.batch_size, n_forward - start)])
    sync()
    forward_seconds = time.perf_counter() - t0
    ratio = seconds / forward_seconds
    result = {
        "device": str(device),
        "size": size,
        "pixels_per_step": args.pixels_per_step,
        "batch_size": args.batch_size,
        "steps_timed": steps,
        "steps_full_curve": full,
        "forward_passes": n_forward,
        "seconds": round(seconds, 3),
        "forward_seconds": round(forward_seconds, 3),
        "ratio": round(ratio, 3),
        "auc": float(curve.auc[0]),
        "provenance": provenance(str(device)),
    }
    print(f"{'quantity':<22}{'value':>12}")
    for key in ("device", "size", "pixels_per_step", "batch_size", "steps_timed", "steps_full_curve",
                "forward_passes", "seconds", "forward_seconds", "ratio"):
        print(f"{key:<22}{result[key]!s:>12}")
    print(f"{'requirement':<22}{'ratio <= 3':>12}  {'PASS' if ratio <= 3 else 'FAIL'}")
    if args.json:
        print(json.dumps(result))
    return 0 if ratio <= 3 else 1
