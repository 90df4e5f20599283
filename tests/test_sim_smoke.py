"""`make sim-smoke` as a test: every algorithm on each of the eleven simulators, a few training
steps on a tiny random dataset and one evaluation episode, through the real runner. It catches
the dimension, action-bound and horizon mistakes the toy tasks hide."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmark.profiles import load_profile
from benchmark.registry import ALGORITHMS
from benchmark.results import read_records
from benchmark.tasks import get_task


@pytest.mark.slow
@pytest.mark.simulator
@pytest.mark.skipif(
    os.environ.get("BENCHMARK_SIM_SMOKE") != "1",
    reason="99 simulator runs, 6.5 min on one core: more than CI's suite has room for; "
    "BENCHMARK_SIM_SMOKE=1 (or `make sim-smoke`) runs them",
)
def test_every_algorithm_runs_on_every_simulator(tmp_path):
    profile = load_profile("sim-smoke")
    assert len(profile.tasks) == 11 and set(profile.algorithms) == set(ALGORITHMS)
    results = tmp_path / "results"
    sweep = subprocess.run(
        [sys.executable, "-m", "benchmark", "sweep", "--profile", "sim-smoke"]
        + ["--executor", "local", "--wait", "--results", str(results)],
        capture_output=True,
        text=True,
    )
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "sweep finished: 99 done, 0 failed" in sweep.stderr
    records = read_records(results, "sim-smoke")
    assert not records.invalid
    cells = {(r["algorithm"], r["task"]) for r in records.records}
    assert cells == {(a, t) for a in ALGORITHMS for t in profile.tasks}
    for record in records.records:
        task = get_task(record["task"])
        length = record["metrics"]["length"]["mean"]
        assert 0 < length <= task.horizon, (record["algorithm"], task.name, length)
        assert record["dataset"]["source"] == "random"
