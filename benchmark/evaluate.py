"""Seeded, vectorised episodes: the fixed evaluation of every run, and the training-time
rollouts the runner provides (`TrainContext.rollout`) under protocols that allow them.

Every algorithm is evaluated on the same fixed episode seeds of a task, disjoint from training
seeds. Episodes run in waves of `num_envs`; the policy sees `reset(obs, mask)` at the start of a
wave (mask = envs that hold a real episode) and `observe(reward, cost, done)` after each step, so
cost-conditioned policies can track their remaining budget per episode. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from benchmark.protocols import normalise_cost
from benchmark.tasks import TaskSpec

if TYPE_CHECKING:  # this module stays free of torch (the report imports the protocols)
    from benchmark.interface import Policy

EVAL_SEED_BASE = 1_000_000
"""Evaluation episode i of every task and algorithm resets with seed EVAL_SEED_BASE + i;
training seeds must stay below it (checked by the runner)."""


def evaluation_seeds(num_episodes: int) -> list[int]:
    return [EVAL_SEED_BASE + i for i in range(num_episodes)]


@dataclass
class EpisodeResults:
    returns: np.ndarray
    costs: np.ndarray
    lengths: np.ndarray

    @property
    def env_steps(self) -> int:
        return int(np.sum(self.lengths))

    def metrics(self, task: TaskSpec, cost_limit: float, kappa_epsilon: float = 0.0) -> dict:
        """Normalised and raw summaries; cost normalised as C/(kappa + kappa_epsilon)."""
        norm_reward = task.normalise_reward(self.returns)
        norm_cost = normalise_cost(self.costs, cost_limit, kappa_epsilon)
        return {
            "normalised_reward": _summary(norm_reward),
            "normalised_cost": _summary(norm_cost),
            "return": _summary(self.returns),
            "cost": _summary(self.costs),
            "length": _summary(self.lengths),
        }


def _summary(values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "per_episode": [float(v) for v in values],
    }


def run_episodes(policy: Policy, env, seeds: list[int], horizon: int) -> EpisodeResults:
    """Roll `policy` out for one episode per seed on the vector env `env`, in waves."""
    n = env.num_envs
    returns, costs, lengths = [], [], []
    for start in range(0, len(seeds), n):
        wave = seeds[start : start + n]
        active = np.zeros(n, dtype=bool)
        active[: len(wave)] = True
        padded = wave + [wave[-1]] * (n - len(wave))
        r, c, steps = _run_wave(policy, env, padded, active, horizon)
        returns.extend(r[: len(wave)])
        costs.extend(c[: len(wave)])
        lengths.extend(steps[: len(wave)])
    return EpisodeResults(np.array(returns), np.array(costs), np.array(lengths))


def _run_wave(policy: Policy, env, seeds: list[int], active: np.ndarray, horizon: int):
    n = env.num_envs
    obs = env.reset(seeds)
    policy.reset(obs, active.copy())
    total_reward = np.zeros(n)
    total_cost = np.zeros(n)
    steps = np.zeros(n, dtype=np.int64)
    running = active.copy()
    # the env truncates at the horizon; the bound only guards against a broken env
    for _ in range(horizon + 1):
        if not running.any():
            break
        actions = np.clip(np.asarray(policy.act(obs), dtype=np.float32), -1.0, 1.0)
        obs, reward, cost, terminated, truncated = env.step(actions, running)
        reward = np.where(running, reward, 0.0)
        cost = np.where(running, cost, 0.0)
        total_reward += reward
        total_cost += cost
        steps += running
        done = running & (np.asarray(terminated) | np.asarray(truncated))
        policy.observe(reward, cost, done)
        running &= ~done
    if running.any():
        raise RuntimeError(f"episodes still running after {horizon} steps: env ignores its horizon")
    return total_reward, total_cost, steps


def evaluate(
    policy: Policy,
    env,
    task: TaskSpec,
    cost_limit: float,
    kappa_epsilon: float,
    num_episodes: int,
) -> dict:
    """Metrics of `num_episodes` fixed-seed episodes: normalised and raw, mean/std/per episode."""
    results = run_episodes(policy, env, evaluation_seeds(num_episodes), task.horizon)
    return results.metrics(task, cost_limit, kappa_epsilon)


class TrainingRollouts:
    """The runner-provided `TrainContext.rollout`: episodes of a policy during training, for
    the protocols that allow it. Builds vector envs on first use (one per width), counts every
    environment step it runs, and closes its envs when the run is done with them."""

    def __init__(self, make_env: Callable[[int], object], horizon: int, max_envs: int):
        self._make_env = make_env
        self._horizon = horizon
        self._max_envs = max(1, max_envs)
        self._envs: dict[int, object] = {}
        self.env_steps = 0

    def __call__(self, policy: Policy, seeds: list[int]) -> EpisodeResults:
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("rollout needs at least one episode seed")
        width = min(len(seeds), self._max_envs)
        if width not in self._envs:
            self._envs[width] = self._make_env(width)
        results = run_episodes(policy, self._envs[width], seeds, self._horizon)
        self.env_steps += results.env_steps
        return results

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
