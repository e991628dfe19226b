"""IBA speed: the lean batched engine against the straightforward reference algorithm.

The model is the torchxrayvision DenseNet121 architecture at 224 x 224 with random weights
(``chexp.models.xrv.densenet121_architecture``; the pretrained weights are not needed for
timing), the bottleneck after dense block 3, reference settings (10 steps, 10 noise samples).
The reference runs one image at a time with a full forward and backward pass per step; the lean
engine computes the network in front of the bottleneck once per image (all images in one pass),
freezes the parameters and runs only the rest of the network at each step, one pass per image
(default: maps equal to the reference's for the same seed up to float rounding; the JSON reports
``max_abs_diff_over_range``) or one pass for all
images (``pass_per_image=False``, faster on a GPU, maps equal up to amplified float rounding).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from typing import TYPE_CHECKING

from ..errors import InvalidParameterError

if TYPE_CHECKING:
    import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=2, help="images explained (default 2)")
    parser.add_argument("--steps", type=int, default=10, help="optimisation steps per image (default 10)")
    parser.add_argument("--samples", type=int, default=10, help="noise samples per step")
    parser.add_argument("--batch-size", type=int, default=8, help="images per lean optimisation")
    parser.add_argument("--layer", default="features.denseblock3",
                        help="module the bottleneck is inserted after (default features.denseblock3)")
    parser.add_argument("--fit-images", type=int, default=8, help="images for the unit statistics")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, images and noise (default 0)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--skip-reference", action="store_true", help="time the lean engine only")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Timer:
    """Wall-clock and process CPU seconds of a block (CPU time is robust to other processes' load)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.wall = self.cpu = 0.0

    def __enter__(self) -> _Timer:
        _sync(self.device)
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def run(args: argparse.Namespace) -> int:
    import torch

    from ..iba import IBA, BottleneckConfig, TargetBCE, UnitStatistics, reference_attribute
    from ..models.xrv import densenet121_architecture
    from ..provenance import provenance

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(f"--device {args.device}: no CUDA device is available; use --device cpu")
    if device.type == "cuda":  # comparable maps: deterministic cuDNN kernels, full fp32 (no TF32)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    model = densenet121_architecture(output="probability", seed=args.seed).to(device)
    target = next(t for t in model.targets if t)
    g = torch.Generator().manual_seed(args.seed)
    n_fit = max(args.fit_images, 2)
    pool = (torch.rand(n_fit + args.images, 1, 224, 224, generator=g) * 2 - 1) * 1024
    # smooth the noise a little so that the feature statistics are not degenerate
    pool = torch.nn.functional.avg_pool2d(pool, 5, stride=1, padding=2).to(device)
    fit_images, images = pool[:n_fit], pool[n_fit:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = UnitStatistics.fit(model, args.layer, fit_images, progress=False)
    settings = dict(steps=args.steps, samples=args.samples, seed=args.seed)
    # warm-up: the first forward and backward passes of a process build kernels and caches
    warm = dict(steps=1, samples=2, seed=args.seed)
    IBA(model, args.layer, stats, **warm).attribute(images[:1], target=target)
    IBA(model, args.layer, stats, pass_per_image=False, **warm).attribute(images[:1], target=target)
    if not args.skip_reference:
        reference_attribute(model, args.layer, images[:1], TargetBCE(target), stats, BottleneckConfig(**warm))

    n = args.images
    iba = IBA(model, args.layer, stats, batch_size=args.batch_size, **settings)
    with _Timer(device) as lean1:
        maps = iba.attribute(images, target=target)
    replayed = all(r.replayed for r in iba.last_results)
    joint_iba = IBA(model, args.layer, stats, batch_size=args.batch_size, pass_per_image=False, **settings)
    with _Timer(device) as joint:
        joint_maps = joint_iba.attribute(images, target=target)
    peak = _peak_rss_mb()

    result: dict[str, object] = {
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        "model": "xrv DenseNet121 architecture (random weights), 224x224",
        "layer": iba.layer_name,
        "images": n,
        "steps": args.steps,
        "samples": args.samples,
        "batch_size": args.batch_size,
        "front_computed_once": replayed,
        "joint_pass_seconds_per_image": joint.wall / n,
        "joint_pass_images_per_second": n / joint.wall,
        "peak_rss_mb": peak,
        "peak_rss_note": "process maximum after the lean runs (model, statistics, both lean modes)",
    }
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    lean_wall, lean_cpu = lean1.wall, lean1.cpu
    if not args.skip_reference:
        with _Timer(device) as reference:
            ref = reference_attribute(model, args.layer, images, TargetBCE(target), stats,
                                      BottleneckConfig(**settings))
        with _Timer(device) as lean2:  # again after the reference: the mean cancels load drift
            maps2 = iba.attribute(images, target=target)
        span = float(ref.max() - ref.min())
        # same seed, same maps: bit for bit on CPU (a failure). On CUDA the run uses cuDNN's
        # deterministic kernels without TF32 (see above); what still differs is reported.
        rerun = float((maps - maps2).abs().max())
        if rerun > 0 and device.type == "cpu":  # internal invariant: a chexp bug, not user input
            raise RuntimeError(
                f"the lean maps changed between two runs with the same seed (max |diff| {rerun:.3g})"
            )
        result["rerun_max_abs_diff_over_range"] = rerun / span if span > 0 else float("nan")
        lean_wall, lean_cpu = (lean1.wall + lean2.wall) / 2, (lean1.cpu + lean2.cpu) / 2
        diff = float((maps - ref).abs().max())
        joint_diff = float((joint_maps - ref).abs().max())
        result.update(
            reference_seconds_per_image=reference.wall / n,
            reference_cpu_seconds_per_image=reference.cpu / n,
            speedup_vs_reference=reference.wall / lean_wall,
            speedup_vs_reference_cpu_time=reference.cpu / lean_cpu,
            max_abs_diff=diff,
            map_range=span,
            max_abs_diff_over_range=diff / span if span > 0 else float("nan"),
            joint_pass_max_abs_diff_over_range=joint_diff / span if span > 0 else float("nan"),
        )
    result.update(
        seconds_per_image=lean_wall / n,
        cpu_seconds_per_image=lean_cpu / n,
        images_per_second=n / lean_wall,
    )

    rows = [
        ("device", f"{result['device']}, {result['threads']} threads"),
        ("images x steps x samples", f"{n} x {args.steps} x {args.samples}"),
        ("lean s/image (wall | CPU)", f"{lean_wall / n:.2f} | {lean_cpu / n:.2f}"),
        ("lean images/s", f"{n / lean_wall:.3f}"),
        ("front computed once", str(replayed)),
        ("lean, one pass for all images: s/image", f"{joint.wall / n:.2f}"),
    ]
    if "speedup_vs_reference" in result:
        rows += [
            ("reference s/image (wall | CPU)",
             f"{result['reference_seconds_per_image']:.2f} | {result['reference_cpu_seconds_per_image']:.2f}"),
            ("speedup vs reference (wall | CPU)",
             f"{result['speedup_vs_reference']:.2f}x | {result['speedup_vs_reference_cpu_time']:.2f}x"),
            ("max |lean - reference|", f"{result['max_abs_diff']:.3g} bits/px"),
            ("  / map range", f"{result['max_abs_diff_over_range']:.3g}"),
            ("  one pass for all images: / map range", f"{result['joint_pass_max_abs_diff_over_range']:.3g}"),
        ]
    rows.append(("peak RSS (after the lean runs)", f"{peak:.0f} MB"))
    width = max(len(k) for k, _ in rows)
    print("IBA benchmark (" + str(result["model"]) + f", bottleneck at {iba.layer_name})")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    if args.json:
        print(json.dumps({**result, "provenance": provenance(str(device))}))
    return 0


if __name__ == "__main__":  # python -m chexp.bench.iba: the same as chexp bench iba
    from ..cli import main

    raise SystemExit(main(["bench", "iba", *sys.argv[1:]]))
