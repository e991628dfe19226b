"""``chexp bench latent-shift`` on the phantom pair: the JSON keys the issue names, and the
sequential walk reaching the same bounds when its step resolves them (the released step of 10
cannot: the phantom bounds lie at |lambda| < 1); ``chexp bench deletion`` at a small image side."""

from __future__ import annotations

import argparse
import json

import pytest

from chexp.bench import latent_shift as bench


@pytest.fixture(scope="module")
def opts():
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--pairs", "phantom", "--images", "2", "--no-isolate", "--json"])
    return args


def test_phantom_pair_reports_the_issue_keys_and_agreeing_bounds(opts, capsys):
    assert bench.run(opts) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["phantom"]
    for key in ("ratio_to_floor", "speedup_vs_sequential", "evaluations", "peak_rss_mb"):
        assert row[key] > 0, key
    assert row["sequential_step"] == "resolving"
    assert row["bounds_agree"] == 1.0, row
    # the search reuses its probes as frames: at most a few evaluations beyond the 10 frames
    assert row["evaluations"] <= row["floor_evaluations"] + 4
    # a fixed-step walk needs more decode+classify evaluations than the search
    assert row["sequential_evaluations"] > row["evaluations"]


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
