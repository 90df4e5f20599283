"""`make bench` section: env steps per second while collecting, per task family.

Each row is one short PPO-Lagrangian collection (`benchmark.data.collect.Collector`) in a
throw-away folder: env stepping, policy sampling, episode logging, the PPO update and the
checkpoint all count; env construction does not. `steps_per_s` is over wall time,
`steps_per_cpu_s` over the CPU time of this process and its workers (robust to other jobs on a
shared machine). Navigation also runs with its envs in two worker processes: faster in wall
time only when a second core is free.

Before the headless-reset change (commit 78a111f, quiet 2-core machine, this module's rows):
toy 1,678, velocity 2,980, navigation 421, bullet 975 env steps/s (wall), kept in `BEFORE` so
the report shows both; wall rates on a shared machine swing by 3x with the load, so compare
`steps_per_cpu_s` and the first row, which times a navigation reset with and without the
skybox within the same run. Measured side by side on the loaded machine (one PointGoal1
update of 8k steps, 4 envs, CPU time): 178 and 183 env steps per CPU-second before, 454 and
427 after.
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmark.tasks import get_task

# family -> (task, env steps per update, updates, updates when quick, worker processes)
FAMILIES: tuple[tuple[str, str, int, int, int, int], ...] = (
    ("toy", "ToyVelocity", 4000, 3, 1, 0),
    ("velocity", "HalfCheetahVelocity", 16000, 2, 1, 0),
    ("navigation", "PointGoal1", 8000, 1, 1, 0),
    ("navigation", "PointGoal1", 8000, 1, 1, 2),
    ("bullet", "CarRun", 4000, 2, 1, 0),
)
BEFORE = {"toy": 1678.0, "velocity": 2980.0, "navigation": 421.0, "bullet": 975.0}
"""Env steps/s (wall) of each family's row before this change, measured on a quiet machine
with `python -m benchmark bench --only collect` at commit 78a111f."""


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(task_name: str, rollout_steps: int, updates: int, workers: int = 0) -> dict:
    """Run `updates` PPO updates of a fresh collection; steps/s over the collection loop."""
    import torch

    from benchmark.data.collect import Collector, collect_spec

    torch.set_num_threads(1)
    task = get_task(task_name)
    spec = replace(collect_spec(task), rollout_steps=rollout_steps)
    with tempfile.TemporaryDirectory() as folder:
        collector = Collector(
            task, spec, seed=0, folder=Path(folder) / "run", progress=False, workers=workers
        )
        start, cpu = time.perf_counter(), _cpu_seconds()
        state = collector.run(max_updates=updates)
        total, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return {
        "env_steps": state.step,
        "episodes": state.episodes,
        "num_envs": spec.num_envs,
        "workers": workers,
        "steps_per_s": state.step / max(state.wall_seconds, 1e-9),
        "steps_per_cpu_s": state.step / max(cpu, 1e-9),
        "seconds_with_env_build": total,
    }


def navigation_reset_seconds(resets: int) -> dict:
    """Seconds per PointGoal1 reset with and without the skybox in the compiled world: the
    change that made navigation collection faster, measured within one run (robust to load)."""
    from safety_gymnasium import world

    from benchmark import envs

    def per_reset() -> float:
        env = envs.make_env("PointGoal1")
        try:
            env.reset(seed=0)
            start = time.process_time()
            for seed in range(1, resets + 1):
                env.reset(seed=seed)
            return (time.process_time() - start) / resets
        finally:
            env.close()

    headless = per_reset()
    patched, patch = world.xmltodict, envs._headless_world_builds
    world.xmltodict, envs._headless_world_builds = patched._module, lambda: None
    try:
        with_skybox = per_reset()
    finally:
        world.xmltodict, envs._headless_world_builds = patched, patch
    return {"cpu_s_per_reset_with_skybox": with_skybox, "cpu_s_per_reset_headless": headless}


def run(quick: bool) -> list[dict]:
    rows = [
        {
            "section": "collect",
            "what": "navigation reset (PointGoal1)",
            **navigation_reset_seconds(2 if quick else 5),
        }
    ]
    for family, task, rollout_steps, updates, quick_updates, workers in FAMILIES:
        result = measure(task, rollout_steps, quick_updates if quick else updates, workers)
        what = f"{family} ({task}{f', {workers} workers' if workers else ''})"
        rows.append(
            {"section": "collect", "what": what, "before_steps_per_s": BEFORE[family], **result}
        )
    return rows
