"""Latent Shift speed: the batched search against the sequential walk, per image and rule.

For every rule of ``--rules`` and every image, one explanation
(:meth:`chexp.latentshift.LatentShift.explain`: search + frames + 2D map) is timed against the
sequential walk of the same rule (:func:`chexp.latentshift.reference.sequential_latent_shift`:
one decode + classify per lambda step, one image at a time) and against its floor (one gradient
pass and one batched decode + classify of the output frames). Speedups are reported per image
with their median and interquartile range, never as a ratio of sums (one slow image would
dominate it).

Sequential references:

* the released rules (``appendix-c``, ``gifsplanation-2021``, ``gifsplanation-current``,
  ``latentshift-0.0.6``): the released code's own walk (its steps, stops and limit); the
  batched search must find exactly its bounds.
* ``paper``: no released code implements this rule, so the reference is chexp's own walk of it
  (the halfway rule for levels a probability cannot reach included). The released step of 10
  suits the torchxrayvision autoencoder's gradient scale; the phantom pair's bounds lie at
  ``|lambda|`` of 0.01-6, which a step of 10 overshoots at once. ``--sequential-step resolving``
  (default) therefore walks each side with a step of ``--resolve`` (10 %) of that side's bound
  (about 10 steps per side; told the scale in advance, so generous to the walk); ``released``
  keeps the step of 10 (bounds may disagree).

Pairs:

* ``phantom`` (measured): the trained phantom classifier and autoencoder.
* ``xrv224`` (modelled, see :mod:`chexp.bench.latent_shift_model`): the torchxrayvision-sized
  DenseNet121 + ResNetAE101 at 224 x 224 can only be built with random weights, whose searches
  are degenerate; each phantom image's measured counts are priced at the measured xrv224 cost
  per pass. It therefore runs the phantom pair too. Its JSON ``kind`` says it is modelled.

The JSON (``--json``, last line): ``provenance`` (:func:`chexp.provenance.provenance`),
``settings``, and per pair its ``kind`` and per rule ``per_image`` records (seconds,
evaluations and passes of the batched search and of the sequential walk, their ratios) and
``summary`` (median, quartiles, IQR of each ratio over the images). Each pair runs in its own
process (``peak_rss_mb``). With ``--device cuda`` a rule's summary also has ``batch_speedup``:
images per second of one batch of ``--batch`` images over the median sequential image rate.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from ..cli.options import positive_int
from ..errors import InvalidParameterError
from .latent_shift_model import MODELLED_KIND, EvalCosts, modelled_image, pass_sizes_needed
from .stats import spread

if TYPE_CHECKING:
    import torch

    from ..latentshift import LatentShift
    from ..latentshift.search import LambdaSearch, SteppedSearch
    from ..models.base import Autoencoder, Classifier

PAIRS = ("phantom", "xrv224")
#: Rules benchmarked by default: the paper's and every released code's.
RULES = ("paper", "appendix-c", "gifsplanation-2021", "gifsplanation-current", "latentshift-0.0.6")
#: Per-image ratios summarised per rule (median, quartiles, IQR).
RATIOS = ("speedup_seconds", "evaluation_ratio", "pass_ratio", "ratio_to_floor")


def _pairs(text: str) -> list[str]:
    """``--pairs``: comma-separated names of :data:`PAIRS`."""
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in pairs if p not in PAIRS]
    if bad or not pairs:
        raise argparse.ArgumentTypeError(f"unknown pair(s) {bad}; valid: {', '.join(PAIRS)}")
    return pairs


def _rules(text: str) -> list[str]:
    """``--rules``: comma-separated names of :data:`chexp.latentshift.SEARCH_RULES`."""
    from ..latentshift import SEARCH_RULES

    rules = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in rules if r not in SEARCH_RULES]
    if bad or not rules:
        raise argparse.ArgumentTypeError(f"unknown rule(s) {bad}; valid: {', '.join(SEARCH_RULES)}")
    return rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=_pairs, default=",".join(PAIRS),
                        help=f"model pairs, comma-separated (default {','.join(PAIRS)}; xrv224 is modelled "
                             "from the phantom pair's counts, so it runs the phantom pair too)")
    parser.add_argument("--rules", type=_rules, default=",".join(RULES),
                        help=f"lambda search rules, comma-separated (default {','.join(RULES)})")
    parser.add_argument("--images", type=positive_int, default=8, help="phantom images (default 8)")
    parser.add_argument("--repeats", type=positive_int, default=1, help="timed repeats (median, default 1)")
    parser.add_argument("--n-frames", type=int, default=10, help="frames of each explanation (default 10)")
    parser.add_argument("--target", default="Cardiomegaly", help="finding explained (default Cardiomegaly)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--batch", type=positive_int, default=16, help="batch size of the GPU throughput test")
    parser.add_argument("--no-sequential", action="store_true", help="skip the sequential walks")
    parser.add_argument("--sequential-step", choices=("resolving", "released"), default="resolving",
                        help="paper rule only: step of chexp's sequential walk, 10%% of each side's bound "
                             "(resolving, reaches the same bounds) or the released step of 10")
    parser.add_argument("--resolve", type=float, default=0.1,
                        help="resolving step as a fraction of the bound")
    parser.add_argument("--no-isolate", action="store_true", help="run pairs in this process")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], repeats: int, device: str) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(max(1, repeats)):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _phantom_images(size: int, n: int, target: str) -> torch.Tensor:
    """``n`` phantoms of side ``size``, positives for ``target`` first."""
    import numpy as np
    import torch

    from ..phantoms import FINDINGS, PhantomConfig, generate

    ps = generate(max(64, 4 * n), seed=321, config=PhantomConfig(size=size))
    col = list(FINDINGS).index(target) if target in FINDINGS else 0
    order = np.argsort(-ps.labels[:, col], kind="stable")
    return torch.from_numpy(ps.images)[order[:n]]


class PassRecorder:
    """Batch sizes of the classifier's forward passes while active (a forward hook)."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        self.sizes: list[int] = []
        self._handle = classifier.register_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple, output: object) -> None:
        self.sizes.append(int(args[0].shape[0]))

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` with an empty record (the record is the last call's)."""
        self.sizes = []
        return fn()

    def close(self) -> None:
        self._handle.remove()


class ResolvingWalk:
    """``rule`` whose :meth:`reference` walks each side with a constant step of ``fraction`` of
    that side's ``bounds`` (the released walk's stop conditions and limit, a finer grid; levels
    out of a probability's range aimed halfway to its edge, as the batched search does)."""

    def __init__(self, rule: LambdaSearch, bounds: list[float], fraction: float,
                 output_kind: str = "probability") -> None:
        import dataclasses

        from ..latentshift.search import ConstantStep, SteppedSearch

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

    def reference(self, value_range: tuple[float, float] | None = None) -> SteppedSearch:
        return self._ref


def _is_released(rule: LambdaSearch) -> bool:
    """A stepped rule is a released code's walk (:mod:`chexp.latentshift.search.released`)."""
    from ..latentshift.search import SteppedSearch

    return isinstance(rule, SteppedSearch)


def walk_label(rule: LambdaSearch, opts: dict[str, Any]) -> str:
    """What the sequential walk of ``rule`` is (``sequential_reference`` in the JSON)."""
    if _is_released(rule):
        return "released code's walk (the rule's own steps, stops and limit)"
    step = (f"step {opts['resolve']:g} x each bound" if opts["sequential_step"] == "resolving"
            else f"step {rule.reference().lower.schedule.typical_step():g}")
    return f"chexp's walk of the {rule.name} rule (no released code implements it), {step}"


def sequential_walk(rule: LambdaSearch, bounds: list[float], opts: dict[str, Any],
                    output_kind: str) -> tuple[LambdaSearch, tuple[float, float]]:
    """The sequential walk ``rule`` is compared with (see the module docstring), and the
    tolerance of each side's bound (0: the same grid, the bounds must be equal)."""
    if _is_released(rule):
        return rule, (0.0, 0.0)
    if opts["sequential_step"] == "resolving":
        walk = ResolvingWalk(rule, bounds, opts["resolve"], output_kind)
        return walk, walk.steps
    step = rule.reference().lower.schedule.typical_step()
    return rule, (step, step)


def _agree(ours: float, theirs: float, tolerance: float) -> bool:
    if tolerance == 0.0:  # the same grid: the same point
        return abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))
    return abs(ours - theirs) <= tolerance + 0.1 * abs(theirs)


def add_ratios(record: dict[str, Any]) -> dict[str, Any]:
    """Per-image ratios of a record with ``batched`` (and ``sequential``) seconds, evaluations,
    passes and ``floor_seconds``: ``speedup_seconds`` (sequential / batched seconds),
    ``evaluation_ratio`` (sequential / batched evaluations), ``pass_ratio`` (sequential
    evaluations, one pass each, / batched passes), ``ratio_to_floor`` (batched / floor seconds)."""
    ours = record["batched"]
    record["ratio_to_floor"] = ours["seconds"] / record["floor_seconds"]
    seq = record.get("sequential")
    if seq is not None:
        record["speedup_seconds"] = seq["seconds"] / ours["seconds"]
        record["evaluation_ratio"] = seq["evaluations"] / max(ours["evaluations"], 1)
        record["pass_ratio"] = seq["evaluations"] / max(ours["passes"], 1)
    return record


def summarize(per_image: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`~chexp.bench.stats.spread` of each of :data:`RATIOS` over ``per_image`` (those
    every image has), and the fraction of sides whose bounds agree with the sequential walk."""
    out: dict[str, Any] = {key: spread([r[key] for r in per_image]) for key in RATIOS
                           if all(key in r for r in per_image)}
    agree = [a for r in per_image for a in r.get("bounds_agree", [])]
    if agree:
        out["bounds_agree"] = sum(agree) / len(agree)
    return out


def _measure_image(ls: LatentShift, clf: Classifier, ae: Autoencoder, x: torch.Tensor, target: str,
                   rule: LambdaSearch, recorder: PassRecorder, opts: dict[str, Any], index: int) -> dict[str, Any]:
    """One image, one rule: the batched explanation, its floor and the sequential walk."""
    import torch

    from ..latentshift.reference import sequential_latent_shift
    from ..targets import as_target

    device, repeats = opts["device"], opts["repeats"]
    t_ours, expl = _timed(partial(recorder.run, partial(ls.explain, x, target)), repeats, device)
    pass_sizes = recorder.sizes[1:]  # the first forward pass is the gradient's
    if sum(pass_sizes) != expl.evaluations:  # internal invariant: a chexp bug, not user input
        raise RuntimeError(f"recorded passes {pass_sizes} do not add up to {expl.evaluations} evaluations")
    bounds = expl.bounds[0].tolist()

    def floor() -> None:
        z, dz, _, _ = ls.gradient(x, as_target(target), rule)
        lam = torch.tensor(expl.lambdas[0].tolist(), dtype=z.dtype, device=z.device)
        with torch.no_grad():
            clf(ae.decode(z + lam.view(-1, *([1] * (z.dim() - 1))) * dz))

    t_floor, _ = _timed(floor, repeats, device)
    record: dict[str, Any] = {
        "image": index,
        "p0": float(expl.initial_prediction[0]),
        "batched": {"seconds": t_ours, "evaluations": expl.evaluations, "passes": len(pass_sizes),
                    "pass_sizes": pass_sizes, "bounds": bounds},
        "floor_seconds": t_floor,
    }
    if not opts["no_sequential"]:
        walk, tolerance = sequential_walk(rule, bounds, opts, clf.output)
        t_seq, seq = _timed(partial(sequential_latent_shift, clf, ae, x, target, walk, opts["n_frames"]),
                            repeats, device)
        record["sequential"] = {"seconds": t_seq, "evaluations": seq.evaluations, "bounds": [seq.lower, seq.upper]}
        record["bounds_agree"] = [_agree(o, s, tol) for o, s, tol in
                                  zip(bounds, (seq.lower, seq.upper), tolerance, strict=True)]
    return add_ratios(record)


def run_phantom(opts: dict[str, Any]) -> dict[str, Any]:
    """The measured pair (runs in a fresh process unless ``--no-isolate``)."""
    import torch

    from ..latentshift import LatentShift, get_search
    from ..training import phantom_autoencoder, phantom_classifier

    torch.manual_seed(0)
    device = opts["device"]
    clf = phantom_classifier(progress=False).to(device).eval()
    ae = phantom_autoencoder(progress=False).to(device).eval()
    images = _phantom_images(clf.input_size or 128, opts["images"], opts["target"]).to(device)
    if opts["target"] not in clf.targets:
        raise InvalidParameterError(f"--target {opts['target']!r}: the phantom classifier predicts "
                                    f"{', '.join(t for t in clf.targets if t)}")
    target = opts["target"]
    recorder = PassRecorder(clf)
    rules: dict[str, Any] = {}
    for name in opts["rules"]:
        rule = get_search(name)
        ls = LatentShift(clf, ae, search=rule, n_frames=opts["n_frames"])
        ls.explain(images[:1], target)  # warm-up
        per_image = [_measure_image(ls, clf, ae, images[i : i + 1], target, rule, recorder, opts, i)
                     for i in range(len(images))]
        entry: dict[str, Any] = {"per_image": per_image, "summary": summarize(per_image)}
        if not opts["no_sequential"]:
            entry["sequential_reference"] = walk_label(rule, opts)
        if device.startswith("cuda") and not opts["no_sequential"]:
            batch = images.repeat(-(-opts["batch"] // len(images)), 1, 1, 1)[: opts["batch"]]
            t_batch, _ = _timed(partial(ls.explain, batch, target), opts["repeats"], device)
            seq_rate = 1.0 / statistics.median(r["sequential"]["seconds"] for r in per_image)
            entry["summary"].update(batch=len(batch), batch_s=t_batch,
                                    batch_speedup=(len(batch) / t_batch) / seq_rate)
        rules[name] = entry
    recorder.close()
    return {"kind": "measured", "models": "trained phantom classifier + phantom autoencoder",
            "device": device, "images": len(images), "image_size": int(images.shape[-1]),
            "target": target, "rules": rules, "peak_rss_mb": _peak_rss_mb()}


def run_xrv_costs(opts: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    """Measured costs of the xrv224 pair (random weights: only the cost is used): one image's
    gradient pass and one decode + classify pass of each of ``sizes`` latents."""
    import torch

    from ..latentshift import LatentShift
    from ..models.xrv import densenet121_architecture, resnet_ae101_architecture
    from ..targets import as_target

    torch.manual_seed(0)
    device = opts["device"]
    clf, ae = densenet121_architecture().to(device).eval(), resnet_ae101_architecture().to(device).eval()
    target = opts["target"] if opts["target"] in clf.targets else next(t for t in clf.targets if t)
    x = _phantom_images(224, 1, target).to(device)
    ls = LatentShift(clf, ae)

    def gradient() -> tuple[torch.Tensor, torch.Tensor]:
        z, dz, _, _ = ls.gradient(x, as_target(target), ls.search)
        return z, dz

    def one_pass(z: torch.Tensor, dz: torch.Tensor, size: int) -> None:
        lam = torch.linspace(-1.0, 1.0, size, dtype=z.dtype, device=z.device).view(-1, *([1] * (z.dim() - 1)))
        with torch.no_grad():
            clf(ae.decode(z + lam * dz))

    z, dz = gradient()  # warm-up
    one_pass(z, dz, 1)
    t_grad, _ = _timed(gradient, opts["repeats"], device)
    pass_s = {k: _timed(partial(one_pass, z, dz, k), opts["repeats"], device)[0] for k in sizes}
    return {"costs": EvalCosts(t_grad, pass_s).as_dict(), "peak_rss_mb": _peak_rss_mb(),
            "models": "torchxrayvision DenseNet121 + ResNetAE101 architectures (random weights), 224x224"}


def model_pair(measured: dict[str, Any], cost_run: dict[str, Any], n_frames: int) -> dict[str, Any]:
    """The modelled pair: every measured image's counts priced at ``cost_run``'s costs."""
    raw = cost_run["costs"]
    costs = EvalCosts(raw["gradient_s"], {int(k): v for k, v in raw["pass_s"].items()})
    rules = {}
    for name, entry in measured["rules"].items():
        per_image = [add_ratios(modelled_image(r, costs, n_frames)) for r in entry["per_image"]]
        rules[name] = {"per_image": per_image, "summary": summarize(per_image)}
        if "sequential_reference" in entry:
            rules[name]["sequential_reference"] = entry["sequential_reference"]
    return {"kind": MODELLED_KIND, "counts_from": "phantom", "models": cost_run["models"],
            "device": measured["device"], "images": measured["images"], "image_size": 224,
            "costs": cost_run["costs"], "rules": rules, "peak_rss_mb": cost_run["peak_rss_mb"]}


def _call(fn: Callable[..., dict[str, Any]], isolate: bool, *args: Any) -> dict[str, Any]:
    if not isolate:
        return fn(*args)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _table(pairs: dict[str, dict[str, Any]]) -> str:
    def cell(summary: dict[str, Any], key: str) -> str:
        s = summary.get(key)
        if s is None:
            return ""
        return f"{s:.3g}" if isinstance(s, float) else f"{s['median']:.3g} [{s['q1']:.3g}, {s['q3']:.3g}]"

    cols = ["pair", "kind", "rule", "images", *RATIOS, "bounds_agree", "batch_speedup"]
    lines = [" | ".join(cols), "(ratios: median [q1, q3] over images)"]
    for pair, entry in pairs.items():
        for rule, r in entry["rules"].items():
            kind = entry["kind"].partition(":")[0]
            lines.append(" | ".join([pair, kind, rule, str(entry["images"]),
                                     *(cell(r["summary"], k) for k in (*RATIOS, "bounds_agree", "batch_speedup"))]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..provenance import provenance

    opts = {k: getattr(args, k) for k in ("images", "repeats", "n_frames", "rules", "target", "device", "batch",
                                          "no_sequential", "sequential_step", "resolve")}
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InvalidParameterError(f"--device {args.device}: no CUDA device is available; use --device cpu")
    isolate = not args.no_isolate
    pairs: dict[str, dict[str, Any]] = {"phantom": _call(run_phantom, isolate, opts)}
    if "xrv224" in args.pairs:
        records = [r for e in pairs["phantom"]["rules"].values() for r in e["per_image"]]
        cost_run = _call(run_xrv_costs, isolate, opts, pass_sizes_needed(records, args.n_frames))
        pairs["xrv224"] = model_pair(pairs["phantom"], cost_run, args.n_frames)
    print(_table(pairs))
    if args.json:
        print(json.dumps({"provenance": provenance(args.device), "settings": opts, "pairs": pairs}))
    return 0


if __name__ == "__main__":  # python -m chexp.bench.latent_shift: the same as chexp bench latent-shift
    from ..cli import main

    raise SystemExit(main(["bench", "latent-shift", *sys.argv[1:]]))
