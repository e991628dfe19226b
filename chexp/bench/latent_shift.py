"""Cost of a Latent Shift explanation against its floor.

For each model pair (``phantom``: the trained phantom classifier and autoencoder, real search
behaviour; ``xrv224``: untrained torchxrayvision-sized DenseNet121 + ResNetAE101 at 224x224,
realistic cost per evaluation), per image:

* floor: one encode, one gradient pass, and one batched decode + classify of the output frames;
* ours: :meth:`chexp.latentshift.LatentShift.attribute` (search + frames + 2D map);
* sequential: :func:`chexp.latentshift.reference.sequential_latent_shift`, the released code's
  way (one decode + classify per lambda step, one image at a time) for the same rule.

The released code's fixed step (10) suits the scale of the torchxrayvision autoencoder's latent
gradient. Where the bounds are much closer to 0 (the phantom autoencoder: ``|lambda|`` of 0.01-1),
a walk with step 10 stops at its first grid point, far past the bounds, and cannot reach them
within any tolerance. ``--sequential-step resolving`` (the default) therefore walks each side with
a constant step of ``--resolve`` (10 %) of that side's bound, the coarsest walk that lands within
tolerance of the same bounds (about 10 steps per side; told the scale in advance, so generous to
the sequential walk); ``released`` keeps the rule's own step (reported as is, bounds may disagree).

Reported: ``ratio_to_floor`` (ours / floor), ``speedup_vs_sequential`` (sequential / ours),
``evaluations`` (decode + classify evaluations per image after the gradient), whether the bounds
agree with the sequential ones (within one step + 10 %), ``peak_rss_mb`` (each pair runs in its
own process). With ``--device cuda`` also ``batch_speedup``: images per second of one batch of
``--batch`` images over the sequential images per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from typing import Any

from chexp.errors import InvalidParameterError

PAIRS = ("phantom", "xrv224")


def _pairs(text: str) -> list[str]:
    """``--pairs``: comma-separated names of :data:`PAIRS`."""
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in pairs if p not in PAIRS]
    if bad or not pairs:
        raise argparse.ArgumentTypeError(f"unknown pair(s) {bad}; valid: {', '.join(PAIRS)}")
    return pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=_pairs, default=",".join(PAIRS),
                        help=f"model pairs, comma-separated (default {','.join(PAIRS)})")
    parser.add_argument("--images", type=int, default=4, help="images per pair (phantom)")
    parser.add_argument("--xrv-images", type=int, default=1, help="images for the xrv224 pair")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats (median)")
    parser.add_argument("--n-frames", type=int, default=10, help="frames of each explanation (default 10)")
    parser.add_argument("--rule", default="paper", help="lambda search rule (chexp.latentshift.SEARCH_RULES)")
    parser.add_argument("--target", default="Cardiomegaly", help="finding explained (default Cardiomegaly)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--batch", type=int, default=16, help="batch size of the GPU throughput test")
    parser.add_argument("--no-sequential", action="store_true", help="skip the sequential reference")
    parser.add_argument("--xrv-sequential", choices=("estimate", "run"), default="estimate",
                        help="xrv224: time the sequential walk (run) or estimate it from the time of one "
                             "batch-1 decode+classify times the walk's step count (default)")
    parser.add_argument("--sequential-step", choices=("resolving", "released"), default="resolving",
                        help="step of the sequential walk (phantom and --xrv-sequential run): 10%% of each "
                             "side's bound (resolving, reaches the same bounds) or the rule's own step")
    parser.add_argument("--resolve", type=float, default=0.1,
                        help="resolving step as a fraction of the bound")
    parser.add_argument("--no-isolate", action="store_true", help="run pairs in this process")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, repeats: int, device: str) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(max(1, repeats)):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _models(pair: str, device: str, n: int, target: str):
    import numpy as np
    import torch

    from chexp.phantoms import PhantomConfig, generate

    if pair == "phantom":
        from chexp.training import phantom_autoencoder, phantom_classifier

        clf, ae = phantom_classifier(progress=False), phantom_autoencoder(progress=False)
        size = clf.input_size or 128
    elif pair == "xrv224":
        from chexp.models.xrv import densenet121_architecture, resnet_ae101_architecture

        clf, ae, size = densenet121_architecture(), resnet_ae101_architecture(), 224
    else:
        raise InvalidParameterError(f"unknown pair {pair!r}; valid: {', '.join(PAIRS)}")
    clf, ae = clf.to(device).eval(), ae.to(device).eval()
    ps = generate(max(64, 4 * n), seed=321, config=PhantomConfig(size=size))
    images = torch.from_numpy(ps.images)
    col = list(ps_findings()).index(target) if target in ps_findings() else 0
    order = np.argsort(-ps.labels[:, col], kind="stable")  # positives first
    return clf, ae, images[order[:n]].to(device)


def ps_findings():
    from chexp.phantoms import FINDINGS

    return FINDINGS


def run_pair(pair: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Benchmark one model pair (runs in a fresh process unless ``--no-isolate``)."""
    import numpy as np
    import torch

    from chexp.latentshift import LatentShift, get_search
    from chexp.latentshift.reference import sequential_latent_shift

    torch.manual_seed(0)
    device = opts["device"]
    n = opts["xrv_images"] if pair == "xrv224" else opts["images"]
    clf, ae, images = _models(pair, device, n, opts["target"])
    target = opts["target"] if opts["target"] in clf.targets else next(t for t in clf.targets if t)
    rule = get_search(opts["rule"])
    n_frames = opts["n_frames"]
    ls = LatentShift(clf, ae, search=rule, n_frames=n_frames)
    ls.explain(images[:1], target)  # warm-up

    floor_t, ours_t, seq_t, evals, seq_evals, agree, max_diff = [], [], [], [], [], [], 0.0
    out_estimated = False
    step = rule.reference().lower.schedule.typical_step() if hasattr(rule, "reference") else 10.0

    def floor(x: torch.Tensor, lams: list[float]) -> None:
        z, dz, recon, raw = ls.gradient(x, rule_target(clf, target), rule)
        lam = torch.tensor(lams, dtype=z.dtype, device=z.device).view(-1, *([1] * (z.dim() - 1)))
        with torch.no_grad():
            frames = ae.decode(z + lam * dz)
            clf(frames)

    for i in range(len(images)):
        x = images[i : i + 1]
        t_ours, expl = _timed(partial(ls.explain, x, target), opts["repeats"], device)
        lams = expl.lambdas[0].tolist()
        t_floor, _ = _timed(partial(floor, x, lams), opts["repeats"], device)
        floor_t.append(t_floor)
        ours_t.append(t_ours)
        evals.append(expl.evaluations)
        if not opts["no_sequential"] and pair == "xrv224" and opts["xrv_sequential"] == "estimate":
            t_seq, count = _estimate_sequential(ls, x, target, rule, expl, n_frames, device)
            seq_t.append(t_seq)
            seq_evals.append(count)
            out_estimated = True
        elif not opts["no_sequential"]:
            walk, side_steps = rule, (step, step)
            if opts.get("sequential_step", "resolving") == "resolving":
                walk = ResolvingWalk(rule, expl.bounds[0].tolist(), opts.get("resolve", 0.1), clf.output)
                side_steps = walk.steps
            t_seq, seq = _timed(partial(sequential_latent_shift, clf, ae, x, target, walk, n_frames), 1, device)
            seq_t.append(t_seq)
            seq_evals.append(seq.evaluations)
            for ours_b, seq_b, s_step in zip(expl.bounds[0].tolist(), (seq.lower, seq.upper), side_steps, strict=True):
                diff = abs(ours_b - seq_b)
                max_diff = max(max_diff, diff)
                agree.append(diff <= s_step + 0.1 * abs(seq_b))
    out: dict[str, Any] = {
        "pair": pair,
        "device": device,
        "images": len(images),
        "image_size": int(images.shape[-1]),
        "rule": rule.name,
        "floor_s": float(np.mean(floor_t)),
        "ours_s": float(np.mean(ours_t)),
        "ratio_to_floor": float(np.sum(ours_t) / np.sum(floor_t)),
        "evaluations": float(np.mean(evals)),
        "floor_evaluations": n_frames,
    }
    if seq_t:
        out.update(
            sequential_s=float(np.mean(seq_t)),
            sequential_evaluations=float(np.mean(seq_evals)),
            speedup_vs_sequential=float(np.sum(seq_t) / np.sum(ours_t)),
            sequential_estimated=out_estimated,
            sequential_step="released" if out_estimated else opts.get("sequential_step", "resolving"),
        )
        if agree:
            out.update(bounds_agree=float(np.mean(agree)), max_bound_diff=max_diff)
    if device.startswith("cuda") and seq_t:
        batch = images.repeat((opts["batch"] + len(images) - 1) // len(images), 1, 1, 1)[: opts["batch"]]
        t_batch, _ = _timed(lambda: ls.explain(batch, target), opts["repeats"], device)
        out["batch"] = len(batch)
        out["batch_s"] = t_batch
        out["batch_speedup"] = (len(batch) / t_batch) / (1.0 / float(np.mean(seq_t)))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


class ResolvingWalk:
    """``rule`` whose :meth:`reference` walks each side with a constant step of ``fraction`` of
    that side's ``bounds`` (the released walk's stop conditions and limit, a finer grid; levels
    out of a probability's range aimed halfway to its edge, as the batched search does)."""

    def __init__(self, rule, bounds: list[float], fraction: float, output_kind: str = "probability") -> None:
        import dataclasses

        from chexp.latentshift.search import ConstantStep, SteppedSearch

        self.name = f"{rule.name}-resolving"
        self._rule = rule
        ref = rule.reference(value_range=rule.value_range(output_kind))
        pairs = list(zip((ref.lower, ref.upper), bounds, strict=True))
        # a bound at 0 (a side that does not move) would otherwise give a zero step
        self.steps = tuple(max(fraction * abs(b), (side.limit if side else 1.0) * 1e-6) for side, b in pairs)
        # a walk of at most 1000 steps (~100x the bound; the grid is built in full up to the limit)
        sides = [None if side is None else
                 dataclasses.replace(side, schedule=ConstantStep(st), limit=min(side.limit, 1000 * st))
                 for (side, _), st in zip(pairs, self.steps, strict=True)]
        self._ref = SteppedSearch(sides[0], sides[1], extra_sigmoid=ref.extra_sigmoid, name=self.name)

        for side in (self._ref.lower, self._ref.upper):  # build the (cached) grids before any timing
            if side is not None:
                side.grid()

    def value_range(self, output_kind: str) -> tuple[float, float] | None:
        return self._rule.value_range(output_kind)

    def reference(self, value_range: tuple[float, float] | None = None):
        return self._ref


def _estimate_sequential(ls, x, target, rule, expl, n_frames, device) -> tuple[float, int]:
    """Time of the sequential walk that reaches ``expl``'s bounds: gradient pass + one batch-1
    decode+classify per grid step (up to the first grid point at or past each bound) and per new
    frame, from measured per-call times."""
    import torch

    ref = rule.reference()
    steps = 1  # lambda = 0 is evaluated once more by the released code
    for side, bound in ((ref.lower, expl.bounds[0, 0].item()), (ref.upper, expl.bounds[0, 1].item())):
        if side is None:
            continue
        grid = side.grid()
        steps += next((k for k, lam in enumerate(grid) if abs(lam) >= abs(bound) - 1e-9), len(grid) - 1)
    steps += n_frames - 2
    z, dz, _, _ = ls.gradient(x, rule_target(ls.classifier, target), rule)
    t_grad, _ = _timed(lambda: ls.gradient(x, rule_target(ls.classifier, target), rule), 1, device)

    def one() -> None:
        with torch.no_grad():
            ls.classifier(ls.autoencoder.decode(z + 0.5 * dz))

    t_one, _ = _timed(one, 3, device)
    return t_grad + steps * t_one, steps


def rule_target(clf, target):
    from chexp.targets import as_target

    return as_target(target)


def _table(rows: list[dict[str, Any]]) -> str:
    cols = ["pair", "images", "floor_s", "ours_s", "ratio_to_floor", "evaluations", "sequential_s",
            "sequential_evaluations", "speedup_vs_sequential", "bounds_agree", "batch_speedup", "peak_rss_mb"]
    cols = [c for c in cols if any(c in r for r in rows)]
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [" | ".join(cols)]
    for r in rows:
        lines.append(" | ".join(fmt(r.get(c, "")) for c in cols))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    opts = {k: getattr(args, k) for k in ("images", "xrv_images", "repeats", "n_frames", "rule", "target",
                                          "device", "batch", "no_sequential", "xrv_sequential",
                                          "sequential_step", "resolve")}
    rows = []
    for pair in args.pairs:
        if args.no_isolate:
            rows.append(run_pair(pair, opts))
        else:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                rows.append(pool.submit(run_pair, pair, opts).result())
    print(_table(rows))
    if args.json:
        print(json.dumps({r["pair"]: r for r in rows}))
    return 0


if __name__ == "__main__":  # python -m chexp.bench.latent_shift: the same as chexp bench latent-shift
    from ..cli import main

    raise SystemExit(main(["bench", "latent-shift", *sys.argv[1:]]))
