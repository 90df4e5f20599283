"""Learning curves from training logs: mean ± std over seeds, one file pair per (task, method)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import ConfigError, ReportError
from benchmark.report.curves import _panel_order, band, read_logs, write_curves


def _run(results: Path, rid: str, algorithm: str, seed: int, slope: float) -> None:
    work = results / "work" / "p" / rid
    work.mkdir(parents=True)
    plan = {"algorithm": algorithm, "task": "ToyVelocity", "seed": seed, "cost_limits": [10.0]}
    (work / "plan.json").write_text(json.dumps(plan))
    rows = [("train", s, s / 10, "loss/actor", slope * s) for s in range(10, 110, 10)]
    rows += [("adapt", s, s / 10, "cost/estimate", 1.0) for s in range(5, 55, 5)]
    pd.DataFrame(rows, columns=["stage", "step", "seconds", "metric", "value"]).to_csv(
        work / "train_log.csv", index=False
    )


def test_band_is_the_mean_and_std_over_seeds_on_a_common_grid():
    a = pd.Series([0.0, 10.0], index=[0, 10])
    b = pd.Series([2.0, 12.0, 99.0], index=[0, 10, 20])  # reaches further: cut at the shortest
    grid, mean, std = band([a, b])
    assert grid[0] == 0 and grid[-1] == 10
    assert np.allclose(mean, grid + 1.0) and np.allclose(std, 1.0)


def test_the_signal_a_method_acts_on_comes_first():
    keys = [("train", "loss/actor"), ("train", "misc/x"), ("adapt", "cost/estimate")]
    assert _panel_order(keys) == [
        ("adapt", "cost/estimate"),
        ("train", "loss/actor"),
        ("train", "misc/x"),
    ]


def test_write_curves_draws_one_figure_per_task_and_method(tmp_path):
    results = tmp_path / "results"
    _run(results, "a", "drcorl", 0, 1.0)
    _run(results, "b", "drcorl", 1, 3.0)
    _run(results, "c", "bc_safe", 0, 2.0)
    assert len(read_logs(results, "p")) == 3
    paths = write_curves(results, "p", tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == [
        "ToyVelocity-bc_safe.pdf",
        "ToyVelocity-bc_safe.png",
        "ToyVelocity-drcorl.pdf",
        "ToyVelocity-drcorl.png",
    ]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_no_logs_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no training logs in .*make sweep PROFILE=smoke"):
        write_curves(tmp_path, "smoke", tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown profile 'nosuch'"):
        write_curves(tmp_path, "nosuch", tmp_path / "out")
