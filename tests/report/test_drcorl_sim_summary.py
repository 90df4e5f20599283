"""reports/drcorl-sim/summarise.py: the seed aggregation and issue 12's target check."""

import pytest

HONEST = "DRCORL honest (policy_eval)"


@pytest.fixture(scope="module")
def summarise(report_script):
    return report_script("drcorl-sim")


def _run(task, variant, seed, reward, cost, estimate=None):
    return {
        "task": task,
        "variant": variant,
        "seed": seed,
        "reward": reward,
        "cost": cost,
        "kappa": 10.0,
        "estimate": estimate,
    }


def test_over_seeds_counts_safe_seeds_and_averages(summarise):
    runs = [
        _run("A", HONEST, 0, 0.4, 0.5, estimate=6.0),
        _run("A", HONEST, 1, 0.6, 1.5, estimate=10.0),
    ]
    (group,) = summarise.over_seeds(runs)
    assert group["seeds"] == [0, 1]
    assert group["safe"] == 1
    assert group["reward"] == pytest.approx(0.5)
    assert group["cost"] == pytest.approx(1.0)
    assert group["estimate"] == pytest.approx(0.8)


def test_target_needs_every_seed_safe_and_two_tasks_at_bc_safe(summarise):
    safe_better = [
        _run(t, v, s, r, 0.5)
        for t in ("A", "B")
        for s in (0, 1)
        for v, r in ((HONEST, 0.8), ("BC-Safe", 0.7))
    ]
    assert "**reached**" in summarise.target(summarise.over_seeds(safe_better))
    one_unsafe = [*safe_better[:-4], _run("B", HONEST, 0, 0.8, 1.2), *safe_better[-3:]]
    verdict = summarise.target(summarise.over_seeds(one_unsafe))
    assert "**not reached**" in verdict
    assert "B (1 of 2 seeds)" in verdict
    assert "B (but unsafe)" in verdict
