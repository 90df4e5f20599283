"""Aggregates across tasks: IQM, stratified-bootstrap intervals, probability of improvement.

These follow Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021),
and the statistics themselves are rliable's (`rliable.metrics`, version 1.2.0):

- scores are given per task, as one 1-D array of per-run (per-seed) values for each task; tasks may
  have different numbers of runs (rliable wants a runs x tasks matrix, so ragged tasks are pooled
  or compared one task at a time, which is what its functions do inside);
- IQM is `rliable.metrics.aggregate_iqm` of all runs of all tasks pooled (the 25%-trimmed mean);
- the probability of improvement P(X > Y) is `rliable.metrics.probability_of_improvement` per task
  (the Mann-Whitney U statistic / n_x n_y, ties count one half), averaged over the tasks;
- the stratified bootstrap resamples runs with replacement *within* each task, keeping the task
  set fixed, and the interval is the percentile interval of the statistic over the resamples.

Why the resampling is not rliable's `get_interval_estimates`: in this version set it cannot run.
rliable 1.2.0's `StratifiedBootstrap` subclasses `arch.bootstrap.IIDBootstrap` and pins arch<8;
every arch<8 fails to import with the locked pandas 3.0.6 (`deprecate_kwarg` changed), and arch 8
removed the `random_state` keyword that rliable passes (TypeError on construction). It also
needs equal run counts per task and draws from numpy's global RNG. So the resampler here is
numpy (seeded `default_rng`), and each resample's statistic is rliable's, computed for all
resamples at once: IQM by the `scipy.stats.trim_mean` that `aggregate_iqm` calls, P(X > Y) by
the same Mann-Whitney count (2000 resamples x tasks calls of rliable's functions take ~0.5 s
per interval); tests/report/test_stats.py checks both equal rliable resample by resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rliable import metrics
from scipy import stats as sps

DEFAULT_REPS = 2000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval."""

    point: float
    low: float
    high: float


def _as_tasks(per_task: Sequence[Sequence[float]]) -> list[np.ndarray]:
    tasks = [np.asarray(values, dtype=float).ravel() for values in per_task]
    if not tasks or any(t.size == 0 for t in tasks):
        raise ValueError("every task needs at least one run")
    if any(not np.all(np.isfinite(t)) for t in tasks):
        raise ValueError("scores must be finite")
    return tasks


def iqm(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: rliable's `aggregate_iqm` of all values; along `axis`, the scipy
    `trim_mean(., 0.25)` that `aggregate_iqm` is, for all resamples in one call (calling
    rliable once per resample makes a 2000-resample interval 100x slower, ~0.5 s)."""
    values = np.asarray(values, dtype=float)
    if axis is None:
        return float(metrics.aggregate_iqm(values))
    return sps.trim_mean(values, proportiontocut=0.25, axis=axis)


def iqm_per_task(per_task: Sequence[Sequence[float]]) -> float:
    """IQM of all runs of all tasks pooled (rliable's `aggregate_iqm`)."""
    return float(iqm(np.concatenate(_as_tasks(per_task))))


def _resample(tasks: list[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For each task a (reps, n_task) array of runs drawn with replacement within that task."""
    return [t[rng.integers(0, t.size, size=(reps, t.size))] for t in tasks]


def _percentile_interval(point: float, samples: np.ndarray, confidence: float) -> Interval:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return Interval(float(point), float(low), float(high))


def bootstrap_iqm(
    per_task: Sequence[Sequence[float]],
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """IQM across tasks with a stratified-bootstrap percentile interval."""
    tasks = _as_tasks(per_task)
    rng = np.random.default_rng(seed)
    pooled = np.concatenate(_resample(tasks, reps, rng), axis=1)  # (reps, total runs)
    return _percentile_interval(iqm_per_task(tasks), iqm(pooled, axis=1), confidence)


def stratified_bootstrap(
    per_task: Sequence[Sequence[float]],
    statistic: Callable[[list[np.ndarray]], float],
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Any statistic of the per-task runs with a stratified-bootstrap interval (slow path)."""
    tasks = _as_tasks(per_task)
    rng = np.random.default_rng(seed)
    draws = _resample(tasks, reps, rng)
    samples = np.array([statistic([d[r] for d in draws]) for r in range(reps)])
    return _percentile_interval(statistic(tasks), samples, confidence)


def poi_resamples(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) within one task for every resample: x (reps, n), y (reps, m) -> (reps,).

    The count rliable's `probability_of_improvement` makes through `mannwhitneyu` (pairs with
    x > y, ties one half, over n m), done for all resamples at once."""
    diff = x[..., :, None] - y[..., None, :]
    return np.mean((diff > 0) + 0.5 * (diff == 0), axis=(-2, -1))


def _poi_task(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's P(X > Y) on one task (its functions take runs x tasks matrices)."""
    return float(metrics.probability_of_improvement(x[:, None], y[:, None]))


def probability_of_improvement(
    x_per_task: Sequence[Sequence[float]], y_per_task: Sequence[Sequence[float]]
) -> float:
    """P(X > Y): the chance that a run of X beats a run of Y on a task, averaged over tasks."""
    xs, ys = _as_tasks(x_per_task), _as_tasks(y_per_task)
    if len(xs) != len(ys):
        raise ValueError("X and Y must have the same tasks")
    return float(np.mean([_poi_task(x, y) for x, y in zip(xs, ys)]))


def bootstrap_poi(
    x_per_task: Sequence[Sequence[float]],
    y_per_task: Sequence[Sequence[float]],
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """P(X > Y) with a stratified-bootstrap interval (X and Y resampled independently per task)."""
    xs, ys = _as_tasks(x_per_task), _as_tasks(y_per_task)
    if len(xs) != len(ys):
        raise ValueError("X and Y must have the same tasks")
    rng = np.random.default_rng(seed)
    x_draws, y_draws = _resample(xs, reps, rng), _resample(ys, reps, rng)
    samples = np.mean([poi_resamples(x, y) for x, y in zip(x_draws, y_draws)], axis=0)
    return _percentile_interval(probability_of_improvement(xs, ys), samples, confidence)
