"""Seeded, vectorised evaluation with DSRL's normalisation.

Every algorithm is evaluated on the same fixed episode seeds of a task, disjoint from training
seeds. Episodes run in waves of `num_envs`; the policy sees `reset(obs, mask)` at the start of a
wave (mask = envs that hold a real episode) and `observe(reward, cost, done)` after each step, so
cost-conditioned policies can track their remaining budget per episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from benchmark.tasks import TaskSpec

if TYPE_CHECKING:  # the report reads PROTOCOLS and must not import torch
    from benchmark.interface import Policy

EVAL_SEED_BASE = 1_000_000
"""Evaluation episode i of every task and algorithm resets with seed EVAL_SEED_BASE + i;
training seeds must stay below it (checked by the runner)."""

PROTOCOLS = {
    # name -> (cost normalisation label, epsilon added to kappa, online allowed)
    "honest": ("C/kappa", 0.0, False),
    "paper": ("C/(kappa+0.1)", 0.1, True),
}


def evaluation_seeds(num_episodes: int) -> list[int]:
    return [EVAL_SEED_BASE + i for i in range(num_episodes)]


def normalise_cost(cost: np.ndarray, cost_limit: float, protocol: str) -> np.ndarray:
    """`C/kappa` (DSRL, honest) or `C/(kappa+0.1)` (the DRCORL code, paper protocol)."""
    epsilon = PROTOCOLS[protocol][1]
    if cost_limit + epsilon <= 0:
        # DSRL's convention for a zero target: (C + 1) / (kappa + 1)
        return (np.asarray(cost) + 1.0) / (cost_limit + 1.0)
    return np.asarray(cost) / (cost_limit + epsilon)


@dataclass
class EpisodeResults:
    returns: np.ndarray
    costs: np.ndarray
    lengths: np.ndarray

    def metrics(self, task: TaskSpec, cost_limit: float, protocol: str) -> dict:
        norm_reward = task.normalise_reward(self.returns)
        norm_cost = normalise_cost(self.costs, cost_limit, protocol)
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
    protocol: str,
    num_episodes: int,
) -> dict:
    """Metrics of `num_episodes` fixed-seed episodes: normalised and raw, mean/std/per episode."""
    results = run_episodes(policy, env, evaluation_seeds(num_episodes), task.horizon)
    return results.metrics(task, cost_limit, protocol)
