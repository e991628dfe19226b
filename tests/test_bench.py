"""``chexp bench latent-shift``: per-image speedups on the phantom pair against each rule's
sequential walk (the released code's for a released rule, chexp's resolving walk for the paper
rule), their medians and IQR, and the xrv224 pair modelled from the phantom counts (labelled);
``chexp bench deletion`` at a small image side; every bench JSON has the provenance."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import numpy as np
import pytest

from chexp.bench import latent_shift as bench
from chexp.bench.latent_shift_model import EvalCosts

#: xrv224 costs the fixture's run is priced at (the real measurement builds the 224 x 224 pair:
#: minutes on a loaded CPU; the smoke run of the report exercises it)
FAKE_COSTS = {"costs": {"gradient_s": 2.0, "pass_s": {"1": 0.5, "10": 3.0}}, "peak_rss_mb": 1.0,
              "models": "fake xrv224 costs"}


@pytest.fixture(scope="module")
def report():
    """``chexp bench latent-shift`` on 2 phantom images, the paper rule and one released rule,
    with the xrv224 pair modelled from fixed costs."""
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--pairs", "phantom,xrv224", "--rules", "paper,appendix-c", "--images", "2",
                              "--no-isolate", "--json"])
    asked: list[list[int]] = []

    def fake_costs(opts, sizes):
        asked.append(sizes)
        return FAKE_COSTS

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench, "run_xrv_costs", fake_costs)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert bench.run(args) == 0
    data = json.loads(out.getvalue().strip().splitlines()[-1])
    data["asked_sizes"] = asked
    return data


def test_phantom_pair_reports_per_image_speedups_and_their_medians(report):
    pair = report["pairs"]["phantom"]
    assert pair["kind"] == "measured" and pair["images"] == 2
    assert set(pair["rules"]) == {"paper", "appendix-c"}
    for name, rule in pair["rules"].items():
        per_image = rule["per_image"]
        assert [r["image"] for r in per_image] == [0, 1]
        for r in per_image:
            ours, seq = r["batched"], r["sequential"]
            assert ours["seconds"] > 0 and seq["seconds"] > 0
            assert sum(ours["pass_sizes"]) == ours["evaluations"] and len(ours["pass_sizes"]) == ours["passes"]
            assert r["speedup_seconds"] == pytest.approx(seq["seconds"] / ours["seconds"])
            assert r["evaluation_ratio"] == pytest.approx(seq["evaluations"] / ours["evaluations"])
            assert r["pass_ratio"] == pytest.approx(seq["evaluations"] / ours["passes"])
            assert r["bounds_agree"] == [True, True], (name, r)
        for key in ("speedup_seconds", "evaluation_ratio", "pass_ratio", "ratio_to_floor"):
            values = [r[key] for r in per_image]
            s = rule["summary"][key]
            assert s["median"] == pytest.approx(float(np.median(values))), key
            assert s["iqr"] == pytest.approx(float(np.percentile(values, 75) - np.percentile(values, 25)))
            assert s["n"] == 2
        assert rule["summary"]["bounds_agree"] == 1.0
    paper, released = pair["rules"]["paper"], pair["rules"]["appendix-c"]
    assert paper["sequential_reference"].startswith("chexp's walk of the paper rule (no released code")
    assert released["sequential_reference"].startswith("released code's walk")
    for r in released["per_image"]:  # the released walk's grid: the batched search finds its exact bounds
        assert r["batched"]["bounds"] == r["sequential"]["bounds"]
    # the search reuses its probes as frames: at most a few evaluations beyond the 10 frames,
    # in far fewer passes than the paper rule's sequential walk (one pass per step)
    for r in paper["per_image"]:
        assert r["batched"]["evaluations"] <= 10 + 4
        assert r["pass_ratio"] > 3


def test_xrv_pair_is_modelled_from_the_phantom_counts(report):
    xrv, phantom = report["pairs"]["xrv224"], report["pairs"]["phantom"]
    assert xrv["kind"] == "modelled: eval counts from trained pairs x measured per-eval cost"
    assert xrv["counts_from"] == "phantom" and xrv["costs"] == FAKE_COSTS["costs"]
    largest = max(k for rule in phantom["rules"].values() for r in rule["per_image"]
                  for k in r["batched"]["pass_sizes"])
    assert report["asked_sizes"] == [sorted({1, 10, largest})]
    cost = EvalCosts(2.0, {1: 0.5, 10: 3.0})
    for name, rule in xrv["rules"].items():
        for r, src in zip(rule["per_image"], phantom["rules"][name]["per_image"], strict=True):
            assert r["batched"]["pass_sizes"] == src["batched"]["pass_sizes"]
            priced = 2.0 + sum(cost.pass_cost(k) for k in src["batched"]["pass_sizes"])
            assert r["batched"]["seconds"] == pytest.approx(priced)
            assert r["sequential"]["seconds"] == pytest.approx(2.0 + 0.5 * src["sequential"]["evaluations"])
            assert r["floor_seconds"] == pytest.approx(2.0 + 3.0)
        speedups = [r["speedup_seconds"] for r in rule["per_image"]]
        assert rule["summary"]["speedup_seconds"]["median"] == pytest.approx(float(np.median(speedups)))
    assert set(report["provenance"]) >= {"python", "torch", "torchvision", "torchxrayvision", "captum", "zennit",
                                         "numpy", "platform", "cpu", "device", "commit", "date"}


def test_pass_costs_are_linear_between_and_beyond_the_measured_sizes():
    cost = EvalCosts(1.0, {1: 0.5, 10: 3.2, 20: 5.2})
    assert cost.pass_cost(1) == pytest.approx(0.5)
    assert cost.pass_cost(4) == pytest.approx(0.5 + 3 * 0.3)
    assert cost.pass_cost(15) == pytest.approx(4.2)
    assert cost.pass_cost(30) == pytest.approx(7.2)  # extrapolated with the last slope
    assert cost.batched_seconds([2, 8]) == pytest.approx(1.0 + 0.8 + 2.6)
    assert cost.sequential_seconds(30) == pytest.approx(1.0 + 15.0)


def test_one_slow_image_moves_the_median_not_the_summary():
    """A saturated image walking 1000 steps used to dominate a ratio of sums."""
    records = [bench.add_ratios({"batched": {"seconds": 1.0, "evaluations": 10, "passes": 2},
                                 "sequential": {"seconds": s, "evaluations": e}, "floor_seconds": 1.0})
               for s, e in ((3.0, 30), (4.0, 31), (500.0, 1000))]
    summary = bench.summarize(records)
    assert summary["speedup_seconds"]["median"] == pytest.approx(4.0)
    assert summary["evaluation_ratio"]["median"] == pytest.approx(3.1)
    assert summary["pass_ratio"]["median"] == pytest.approx(15.5)
    assert summary["speedup_seconds"]["q3"] == pytest.approx(252.0)


def test_resolving_walk_steps_are_a_fraction_of_each_bound():
    from chexp.latentshift import PaperSearch

    walk = bench.ResolvingWalk(PaperSearch(), [-0.5, 0.02], 0.1)
    ref = walk.reference()
    assert walk.steps == pytest.approx((0.05, 0.002))
    assert ref.lower.grid()[:3] == pytest.approx([0.0, -0.05, -0.1])
    assert ref.upper.grid()[:3] == pytest.approx([0.0, 0.002, 0.004])
    assert ref.lower.limit == pytest.approx(50.0)  # 1000 steps
    assert len(ref.upper.grid()) == 1001


def test_deletion_bench_runs_below_the_released_side(capsys):
    """``chexp bench deletion --size 64`` times DenseNet121 at 64 x 64 (it used to be rejected)."""
    from chexp.cli import main

    status = main(["bench", "deletion", "--size", "64", "--steps", "2", "--batch-size", "4",
                   "--device", "cpu", "--json"])
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == (0 if row["ratio"] <= 3 else 1)
    assert (row["size"], row["steps_timed"], row["forward_passes"]) == (64, 2, 3)
    assert row["steps_full_curve"] == -(-64 * 64 // 25)
    assert row["seconds"] > 0 and row["forward_seconds"] > 0
    assert row["provenance"]["device"].startswith("cpu (") and row["provenance"]["torch"]
