"""DRCORL learns on ToyVelocity through the runner (demo profile, 3 seeds)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from benchmark.runner import RunSpec, execute

SEEDS = (0, 1, 2)


def _run(algorithm: str, seed: int, results) -> dict:
    spec = RunSpec(algorithm, "ToyVelocity", seed=seed, cost_limit=10.0, profile="demo")
    [record] = execute(spec, results)
    return record


def _last_logged(results, record: dict, metric: str) -> float:
    path = results / "work" / "demo" / record["train_id"] / "train_log.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["metric"] == metric]
    return float(rows[-1]["value"])


@pytest.mark.slow
def test_drcorl_is_safe_and_beats_bc_safe_on_toy_velocity(tmp_path):
    results = tmp_path / "results"
    drcorl = [_run("drcorl", s, results) for s in SEEDS]
    bc_safe = [_run("bc_safe", s, results) for s in SEEDS]
    for record in drcorl:
        assert record["metrics"]["normalised_cost"]["mean"] <= 1.0, record["metrics"]
        for branch in ("reward", "both", "cost"):
            assert _last_logged(results, record, f"branch/{branch}_total") > 0, branch
    reward = np.mean([r["metrics"]["normalised_reward"]["mean"] for r in drcorl])
    baseline = np.mean([r["metrics"]["normalised_reward"]["mean"] for r in bc_safe])
    assert reward >= baseline, (reward, baseline)
