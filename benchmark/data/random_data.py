"""A tiny DSRL-format dataset for any simulator task, made in seconds (data source `random`).

For the simulator smoke check (`make sim-smoke`): every algorithm trains a few steps on it and
is evaluated for one episode, which catches dimension, action-bound and horizon mistakes that
the toy tasks hide. It is not offline-RL data worth learning from: half its episodes take
uniform random actions in [-1, 1] (costly, varied), half take zero actions (mostly cost-free),
so that trajectory filters such as BC-Safe's always keep something. Episodes are stepped on
the same vector env as evaluation and logged with DSRL's flags (terminals on termination,
timeouts on truncation). It lives in memory only, never in a file, so it can never be
mistaken for DSRL's data.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.dataset import Dataset, from_arrays
from benchmark.tasks import TaskSpec

RANDOM_SEED_BASE = 3_000_000
"""Reset seeds of the random dataset's episodes: above the evaluation (1e6) and DRCORL's
online (2e6) seed ranges, so no evaluation episode is in the data."""


def random_dataset(task: TaskSpec, episodes: int = 2, seed: int = 0) -> Dataset:
    """`episodes` full episodes of `task`, alternately random and zero actions."""
    from benchmark.envs import make_vector_env

    rng = np.random.default_rng(seed)
    env = make_vector_env(task, episodes)
    try:
        columns = _roll(env, task, episodes, rng, RANDOM_SEED_BASE + seed * episodes)
    finally:
        env.close()
    return from_arrays(task.name, columns, source="random", attrs={"generator": "random"})


def _roll(env, task: TaskSpec, n: int, rng: np.random.Generator, first_seed: int) -> dict:
    obs = env.reset([first_seed + i for i in range(n)])
    zero = np.arange(n) % 2 == 1
    running = np.ones(n, dtype=bool)
    steps: list[dict[str, np.ndarray]] = []
    for _ in range(task.horizon):
        if not running.any():
            break
        actions = rng.uniform(-1.0, 1.0, size=(n, task.act_dim)).astype(np.float32)
        actions[zero] = 0.0
        next_obs, reward, cost, terminated, truncated = env.step(actions, running)
        steps.append(
            {
                "mask": running.copy(),
                "observations": obs,
                "actions": actions,
                "rewards": reward,
                "costs": cost,
                "next_observations": next_obs,
                "terminals": np.asarray(terminated) & running,
                "timeouts": np.asarray(truncated) & running & ~np.asarray(terminated),
            }
        )
        running &= ~(np.asarray(terminated) | np.asarray(truncated))
        obs = next_obs
    return _episode_major(steps, n)


def _episode_major(steps: list[dict[str, np.ndarray]], n: int) -> dict[str, np.ndarray]:
    """Step-major batches -> DSRL's layout, one episode after the other."""
    keys = [k for k in steps[0] if k != "mask"]
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for env_index in range(n):
        rows = [s for s in steps if s["mask"][env_index]]
        for key in keys:
            out[key].append(np.stack([np.asarray(s[key])[env_index] for s in rows]))
    columns = {k: np.concatenate(v) for k, v in out.items()}
    if not (columns["terminals"] | columns["timeouts"]).any():
        raise RuntimeError("random dataset: no episode ended within the task's horizon")
    return columns
