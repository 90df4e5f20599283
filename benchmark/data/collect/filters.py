"""DSRL's two episode filters: the range filter and the grid (density) filter (datasets.md 1.1).

numpy only. `range_filter` keeps DSRL's bounds; `grid_filter` thins the episodes to a target
count while flattening their density over the (cost, return) plane.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.tasks import CollectSpec, TaskSpec


def range_filter(task: TaskSpec, spec: CollectSpec, returns, costs) -> np.ndarray:
    """DSRL's bounds: R >= 0 (navigation and velocity tasks) and C <= the task's max cost."""
    keep = np.asarray(costs) <= task.max_cost
    if spec.reward_filter:
        keep &= np.asarray(returns) >= 0.0
    return keep


def grid_filter(returns, costs, target: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most `target` episodes, flattening their density over (C, R).

    A ceil(sqrt(target)) x ceil(sqrt(target)) grid over the data's (cost, return) box; one
    episode from every occupied cell first, then random cells (uniform over cells that still
    hold unpicked episodes) give one more each until `target` (FSRL's `filter_points` idea).
    """
    returns, costs = np.asarray(returns, np.float64), np.asarray(costs, np.float64)
    n = returns.shape[0]
    if n <= target:
        return np.arange(n)
    side = math.ceil(math.sqrt(target))
    cells = _cell_index(costs, side) * side + _cell_index(returns, side)
    members: dict[int, list[int]] = {}
    for i in rng.permutation(n):
        members.setdefault(int(cells[i]), []).append(int(i))
    pools = list(members.values())
    chosen: list[int] = []
    order = rng.permutation(len(pools))
    for k in order[:target]:
        chosen.append(pools[k].pop())
    open_pools = [p for p in pools if p]
    while len(chosen) < target and open_pools:
        k = int(rng.integers(len(open_pools)))
        chosen.append(open_pools[k].pop())
        if not open_pools[k]:
            open_pools.pop(k)
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _cell_index(values: np.ndarray, side: int) -> np.ndarray:
    low, high = values.min(), values.max()
    if high <= low:
        return np.zeros(values.shape[0], dtype=np.int64)
    return np.minimum(((values - low) / (high - low) * side).astype(np.int64), side - 1)
