"""Evaluation throughput: episodes per second, sequential (1 env) vs vectorised (N envs)."""

from __future__ import annotations

import time

import numpy as np

from benchmark.envs import make_vector_env
from benchmark.evaluate import evaluation_seeds, run_episodes
from benchmark.interface import StatelessPolicy
from benchmark.tasks import get_task

CASES = (("ToyVelocity", 40, 10), ("ToyPointGoal", 40, 10), ("CarRun", 10, 5))


def _policy(act_dim: int) -> StatelessPolicy:
    weights = np.random.default_rng(0).normal(size=(1, act_dim))
    return StatelessPolicy(lambda obs: np.tanh(np.sin(obs.sum(1, keepdims=True)) + weights))


def _episodes_per_second(task_name: str, episodes: int, num_envs: int) -> tuple[float, float]:
    task = get_task(task_name)
    env = make_vector_env(task, num_envs)
    try:
        start = time.perf_counter()
        results = run_episodes(_policy(task.act_dim), env, evaluation_seeds(episodes), task.horizon)
        seconds = time.perf_counter() - start
    finally:
        env.close()
    return episodes / seconds, float(results.lengths.sum()) / seconds


def run(quick: bool) -> list[dict]:
    rows = []
    for task_name, episodes, num_envs in CASES:
        episodes = max(num_envs, episodes // (4 if quick else 1))
        for n in (1, num_envs):
            eps, steps = _episodes_per_second(task_name, episodes, n)
            rows.append(
                {
                    "section": "evaluation",
                    "what": task_name,
                    "num_envs": n,
                    "episodes": episodes,
                    "episodes_per_s": eps,
                    "env_steps_per_s": steps,
                }
            )
    return rows
