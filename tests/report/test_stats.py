"""Golden values for the aggregate statistics (fixed RNG seed; hand-checked point estimates)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.report import stats

X = [[0.1, 0.5, 0.9], [0.2, 0.4], [0.7, 0.8, 0.9, 1.0]]
Y = [[0.0, 0.3, 0.6], [0.3, 0.3], [0.5, 0.9, 0.9, 0.95]]


def test_iqm_trims_a_quarter_at_each_end_of_the_pooled_runs():
    assert stats.iqm_per_task([[1, 2, 3, 4], [5, 6, 7, 8]]) == pytest.approx(4.5)
    # 9 pooled values: 2 trimmed at each end -> mean of .4 .5 .7 .8 .9
    assert stats.iqm_per_task(X) == pytest.approx(0.66)
    # an outlier does not move the IQM
    assert stats.iqm_per_task([[0.5, 0.5, 0.5, 100.0]]) == pytest.approx(0.5)


def test_probability_of_improvement_counts_ties_as_half_and_averages_tasks():
    # task 1: (0 + 0 + 1 + 0.5) / 4, task 2: 0 -> 0.1875
    assert stats.probability_of_improvement([[1, 2], [3]], [[1.5, 2], [4]]) == pytest.approx(0.1875)
    # by hand: (6/9 + 2/4 + 8/16) / 3
    assert stats.probability_of_improvement(X, Y) == pytest.approx((6 / 9 + 0.5 + 0.5) / 3)
    assert stats.probability_of_improvement([[1.0]], [[1.0]]) == 0.5


def test_bootstrap_iqm_golden_values_with_fixed_seed():
    interval = stats.bootstrap_iqm(X, reps=1000, seed=0)
    assert interval.point == pytest.approx(0.66)
    assert (interval.low, interval.high) == pytest.approx((0.46, 0.82))
    assert stats.bootstrap_iqm(X, reps=1000, seed=0) == interval  # reproducible
    assert stats.bootstrap_iqm(X, reps=1000, seed=1) != interval  # the seed matters


def test_bootstrap_poi_golden_values_with_fixed_seed():
    interval = stats.bootstrap_poi(X, Y, reps=1000, seed=0)
    assert interval.point == pytest.approx(5 / 9)
    assert (interval.low, interval.high) == pytest.approx((0.2314236111, 0.84375))


def test_generic_stratified_bootstrap_golden_values():
    interval = stats.stratified_bootstrap(
        X, lambda tasks: float(np.mean([t.mean() for t in tasks])), reps=200, seed=1
    )
    assert interval.point == pytest.approx(0.55)
    assert (interval.low, interval.high) == pytest.approx((0.4192361111, 0.6722222222))


def test_bootstrap_resamples_within_tasks_only():
    # constant tasks: any within-task resample gives the same pooled set -> a zero-width interval
    interval = stats.bootstrap_iqm([[0.2, 0.2], [0.8, 0.8, 0.8]], reps=200, seed=0)
    assert interval.low == interval.high == pytest.approx(interval.point)
    poi = stats.bootstrap_poi([[1.0, 1.0], [0.0]], [[0.0, 0.0], [1.0]], reps=200, seed=0)
    assert (poi.point, poi.low, poi.high) == (0.5, 0.5, 0.5)


def test_interval_contains_point_and_narrows_with_more_runs():
    rng = np.random.default_rng(3)
    few = [rng.normal(0.5, 0.2, 3) for _ in range(4)]
    many = [rng.normal(0.5, 0.2, 30) for _ in range(4)]
    a, b = stats.bootstrap_iqm(few, reps=500), stats.bootstrap_iqm(many, reps=500)
    assert a.low <= a.point <= a.high and b.low <= b.point <= b.high
    assert b.high - b.low < a.high - a.low


@pytest.mark.parametrize("bad", [[], [[]], [[0.1, float("nan")]]])
def test_bad_scores_are_refused(bad):
    with pytest.raises(ValueError):
        stats.bootstrap_iqm(bad)


def test_poi_needs_the_same_tasks():
    with pytest.raises(ValueError):
        stats.probability_of_improvement([[1.0], [2.0]], [[1.0]])


def test_statistics_are_rliables_resample_by_resample():
    """The vectorised IQM and P(X > Y) over bootstrap resamples equal rliable's functions
    called on each resample (rliable.metrics is the definition; ours is only faster)."""
    from rliable import metrics

    rng = np.random.default_rng(7)
    tasks = [np.round(rng.uniform(size=n), 1) for n in (3, 2, 5)]  # rounding makes ties
    draws = stats._resample(tasks, 50, rng)
    pooled = np.concatenate(draws, axis=1)
    expected = [metrics.aggregate_iqm(row) for row in pooled]
    assert np.array_equal(stats.iqm(pooled, axis=1), expected)
    other = stats._resample([np.round(rng.uniform(size=n), 1) for n in (4, 2, 3)], 50, rng)
    for x, y in zip(draws, other):
        mine = stats.poi_resamples(x, y)
        theirs = [metrics.probability_of_improvement(a[:, None], b[:, None]) for a, b in zip(x, y)]
        assert np.allclose(mine, theirs, rtol=0, atol=1e-12)


def test_report_statistics_import_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, benchmark.report.stats; print('torch' in sys.modules, 'arch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
