"""IBA speed: the lean batched engine against the straightforward reference algorithm.

The model is the torchxrayvision DenseNet121 architecture at 224 x 224 with random weights
(``chexp.models.xrv.densenet121_architecture``; the pretrained weights are not needed for
timing), the bottleneck after dense block 3, reference settings (10 steps, 10 noise samples).
The reference runs one image at a time with a full forward and backward pass per step; the lean
engine computes the network in front of the bottleneck once per image (all images in one pass),
freezes the parameters and runs only the rest of the network at each step, one pass per image
(default: maps bit-for-bit equal to the reference's for the same seed) or one pass for all
images (``pass_per_image=False``, faster on a GPU, maps equal up to amplified float rounding).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings

import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=2, help="images explained (default 2)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--samples", type=int, default=10, help="noise samples per step")
    parser.add_argument("--batch-size", type=int, default=8, help="images per lean optimisation")
    parser.add_argument("--layer", default="features.denseblock3")
    parser.add_argument("--fit-images", type=int, default=8, help="images for the unit statistics")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--skip-reference", action="store_true", help="time the lean engine only")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(args: argparse.Namespace) -> int:
    from ..iba import IBA, BottleneckConfig, TargetBCE, UnitStatistics, reference_attribute
    from ..models.xrv import densenet121_architecture

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
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
    with torch.no_grad():  # warm-up
        model(images[:1])

    iba = IBA(model, args.layer, stats, batch_size=args.batch_size, **settings)
    _sync(device)
    start = time.perf_counter()
    maps = iba.attribute(images, target=target)
    _sync(device)
    lean = time.perf_counter() - start
    peak = _peak_rss_mb()
    replayed = all(r.replayed for r in iba.last_results)

    result: dict[str, object] = {
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        "model": "xrv DenseNet121 architecture (random weights), 224x224",
        "layer": iba.layer_name,
        "images": args.images,
        "steps": args.steps,
        "samples": args.samples,
        "batch_size": args.batch_size,
        "seconds_per_image": lean / args.images,
        "peak_rss_note": "process maximum after the lean runs (model, statistics and lean IBA)",
        "images_per_second": args.images / lean,
        "front_computed_once": replayed,
        "peak_rss_mb": peak,
    }
    joint_iba = IBA(model, args.layer, stats, batch_size=args.batch_size, pass_per_image=False, **settings)
    _sync(device)
    start = time.perf_counter()
    joint_maps = joint_iba.attribute(images, target=target)
    _sync(device)
    joint = time.perf_counter() - start
    result.update(joint_pass_seconds_per_image=joint / args.images,
                  joint_pass_images_per_second=args.images / joint, peak_rss_mb=_peak_rss_mb())
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if not args.skip_reference:
        _sync(device)
        start = time.perf_counter()
        ref = reference_attribute(model, args.layer, images, TargetBCE(target), stats,
                                  BottleneckConfig(**settings))
        _sync(device)
        reference = time.perf_counter() - start
        span = float(ref.max() - ref.min())
        diff = float((maps - ref).abs().max())
        joint_diff = float((joint_maps - ref).abs().max())
        result.update(
            joint_pass_max_abs_diff_over_range=joint_diff / span if span > 0 else float("nan"),
            reference_seconds_per_image=reference / args.images,
            speedup_vs_reference=reference / lean,
            max_abs_diff=diff,
            map_range=span,
            max_abs_diff_over_range=diff / span if span > 0 else float("nan"),
        )

    rows = [
        ("device", result["device"]),
        ("images x steps x samples", f"{args.images} x {args.steps} x {args.samples}"),
        ("lean s/image", f"{result['seconds_per_image']:.3f}"),
        ("lean images/s", f"{result['images_per_second']:.3f}"),
        ("front computed once", str(replayed)),
        ("lean, one pass for all images: s/image", f"{result['joint_pass_seconds_per_image']:.3f}"),
    ]
    if "speedup_vs_reference" in result:
        rows += [
            ("reference s/image", f"{result['reference_seconds_per_image']:.3f}"),
            ("speedup vs reference", f"{result['speedup_vs_reference']:.2f}x"),
            ("max |lean - reference|", f"{result['max_abs_diff']:.3g} bits/px"),
            ("  / map range", f"{result['max_abs_diff_over_range']:.3g}"),
            ("  one pass for all images: / map range", f"{result['joint_pass_max_abs_diff_over_range']:.3g}"),
        ]
    rows.append(("peak RSS (after the lean runs)", f"{result['peak_rss_mb']:.0f} MB"))
    width = max(len(k) for k, _ in rows)
    print("IBA benchmark (" + str(result["model"]) + f", bottleneck at {iba.layer_name})")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    if args.json:
        print(json.dumps(result))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
