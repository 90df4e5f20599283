"""`make bench` section: env steps per second while collecting, per task family.

Each row is one short PPO-Lagrangian collection (`benchmark.data.collect.Collector`) in a
throw-away folder: env stepping, policy sampling, episode logging, the PPO update and the
checkpoint all count; env construction does not (navigation envs take ~1 s each to build).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmark.tasks import get_task

# family -> (task, env steps per update, updates, updates when quick)
FAMILIES: tuple[tuple[str, str, int, int, int], ...] = (
    ("toy", "ToyVelocity", 4000, 3, 1),
    ("velocity", "HalfCheetahVelocity", 16000, 2, 1),
    ("navigation", "PointGoal1", 8000, 1, 1),
    ("bullet", "CarRun", 4000, 2, 1),
)


def measure(task_name: str, rollout_steps: int, updates: int) -> dict:
    """Run `updates` PPO updates of a fresh collection; steps/s over the collection loop."""
    import torch

    from benchmark.data.collect import Collector, collect_spec

    torch.set_num_threads(1)
    task = get_task(task_name)
    spec = replace(collect_spec(task), rollout_steps=rollout_steps)
    with tempfile.TemporaryDirectory() as folder:
        collector = Collector(task, spec, seed=0, folder=Path(folder) / "run", progress=False)
        start = time.perf_counter()
        state = collector.run(max_updates=updates)
        total = time.perf_counter() - start
    return {
        "env_steps": state.step,
        "episodes": state.episodes,
        "num_envs": spec.num_envs,
        "steps_per_s": state.step / max(state.wall_seconds, 1e-9),
        "seconds_with_env_build": total,
    }


def run(quick: bool) -> list[dict]:
    rows = []
    for family, task, rollout_steps, updates, quick_updates in FAMILIES:
        result = measure(task, rollout_steps, quick_updates if quick else updates)
        rows.append({"section": "collect", "what": f"{family} ({task})", **result})
    return rows
