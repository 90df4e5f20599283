"""DRCORL's record carries its calibration (final cost estimate beside the evaluated cost)
and its branch fractions, through the runner's `algorithm_summary` hook."""

from __future__ import annotations

import copy
import math

import pytest

from benchmark.errors import RecordError
from benchmark.results import validate_record
from benchmark.runner import RunSpec, execute

from .conftest import build, train


def test_summary_fractions_and_estimates(toy_velocity):
    algo = build(toy_velocity, adapt_iterations=8, warmup_iterations=2, cost_threshold=1e-6)
    train(algo)
    summary = algo.summary()
    fractions = [summary[f"branch_{b}"] for b in ("reward", "both", "cost")]
    assert math.isclose(sum(fractions), 1.0)
    after = [summary[f"branch_{b}_after_warmup"] for b in ("reward", "both", "cost")]
    assert math.isclose(sum(after), 1.0), "the 5 iterations after k <= 2 are all counted once"
    assert summary["final_estimate"] == summary["final_estimate_policy_eval"]
    assert {"final_estimate_iql", "final_estimate_policy_eval_std"} <= set(summary)
    iql = build(toy_velocity, cost_signal="iql", holdout_fraction=0.0)
    train(iql)
    assert "final_estimate_policy_eval" not in iql.summary()
    assert iql.summary()["final_estimate"] == iql.summary()["final_estimate_iql"]


@pytest.mark.parametrize("signal", ["policy_eval", "iql"])
def test_record_carries_the_summary_and_the_schema_checks_it(tmp_path, signal):
    spec = RunSpec(
        "drcorl",
        "ToyVelocity",
        seed=0,
        cost_limit=10.0,
        profile="smoke",
        overrides={"cost_signal": signal},
    )
    [record] = execute(spec, tmp_path)
    summary = record["algorithm_summary"]
    assert summary["final_estimate"] == summary[f"final_estimate_{signal}"]
    assert "cost" in record["metrics"], "the evaluated cost sits beside the estimate"
    assert summary["adapt_iterations"] == 8
    broken = copy.deepcopy(record)
    broken["algorithm_summary"]["final_estimate"] = float("nan")
    with pytest.raises(RecordError, match="algorithm_summary.final_estimate"):
        validate_record(broken)
    broken["algorithm_summary"] = {"final_estimate": "high"}
    with pytest.raises(RecordError, match="algorithm_summary"):
        validate_record(broken)


def test_both_iterations_log_both_cosines_and_the_summary_averages_them(toy_velocity):
    """cos_grad (raw gradients) and cos_adam_delta (the code's two Adam deltas) in every
    "both" iteration, whichever manipulation runs; summary() averages them over all of them."""
    for manipulation in ("gradient", "adam_delta"):
        # threshold 0.5 with slack 0.5 either side: every estimate in [0, 1] is a "both" step
        algo = build(toy_velocity, manipulation=manipulation, cost_threshold=0.5)
        algo.config.slack_upper = 1e9
        logs = train(algo)["adapt"]
        both = [log for log in logs if log["branch/both"] == 1.0]
        assert both, "the band covers every estimate"
        for log in both:
            assert -1.0 <= log["grad/cos"] <= 1.0 and -1.0 <= log["grad/cos_adam_delta"] <= 1.0
        summary = algo.summary()
        assert math.isclose(summary["mean_cos_grad"], sum(b["grad/cos"] for b in both) / len(both))
