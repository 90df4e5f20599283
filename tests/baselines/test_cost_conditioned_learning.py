"""CAPS and CCAC on ToyVelocity: one trained model, evaluated at the demo profile's three
cost limits."""

from __future__ import annotations

import pytest

from benchmark.runner import RunSpec, execute


def _demo_records(algorithm: str, results_dir, cost_limit: float | None = None) -> dict:
    spec = RunSpec(
        algorithm=algorithm, task="ToyVelocity", seed=0, profile="demo", cost_limit=cost_limit
    )
    records = execute(spec, results_dir=results_dir)
    return {r["cost_limit"]: r["metrics"] for r in records}


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["caps", "ccac"])
def test_learns_on_toy_velocity(algorithm, tmp_path):
    """One model, three limits: normalised cost does not rise as the limit tightens (0.1
    tolerance) and reward at the loosest limit is at least BC-Safe's there (0.02 tolerance)."""
    metrics = _demo_records(algorithm, tmp_path)
    limits = sorted(metrics)
    assert len(limits) == 3
    cost = [metrics[k]["normalised_cost"]["mean"] for k in limits]  # tightest first
    for tighter, looser in zip(cost, cost[1:]):
        assert tighter <= looser + 0.1, cost
    loosest = limits[-1]
    bc_safe = _demo_records("bc_safe", tmp_path, cost_limit=loosest)[loosest]
    reward = metrics[loosest]["normalised_reward"]["mean"]
    assert reward >= bc_safe["normalised_reward"]["mean"] - 0.02
