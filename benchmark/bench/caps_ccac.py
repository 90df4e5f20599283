"""`make bench` section `caps_ccac`: milliseconds per update step of CAPS and CCAC.

Measured at the `paper` settings (the Config defaults plus the per-task overrides of their
YAML files) on real task shapes with synthetic transitions of those shapes, so no dataset
download is needed: CarGoal1 (obs 72, act 2) and CarRun (obs 7, act 2, CCAC batch 1024).
The run's device is used (CPU with one torch thread unless a GPU is visible).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmark.data.dataset import from_arrays
from benchmark.interface import TrainContext
from benchmark.runner.trainer import fuse_cpu_adam
from benchmark.tasks import get_task

TASKS = ("CarGoal1", "CarRun")
ALGORITHMS = ("caps", "ccac")


def _synthetic_dataset(task_name: str, transitions: int, seed: int = 0):
    task = get_task(task_name)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(transitions + 1, task.obs_dim)).astype(np.float32)
    timeouts = np.zeros(transitions, dtype=bool)
    timeouts[task.horizon - 1 :: task.horizon] = True
    timeouts[-1] = True
    arrays = {
        "observations": obs[:-1],
        "next_observations": obs[1:],
        "actions": rng.uniform(-1, 1, size=(transitions, task.act_dim)).astype(np.float32),
        "rewards": rng.uniform(0, 1, size=transitions).astype(np.float32),
        "costs": (rng.uniform(size=transitions) < 0.1).astype(np.float32),
        "terminals": np.zeros(transitions, dtype=bool),
        "timeouts": timeouts,
    }
    return task, from_arrays(task.name, arrays, source="generated")


def _paper_config(algorithm: str, task: str):
    """The run config a `paper` run of `algorithm` on `task` gets (defaults + task overrides)."""
    from benchmark.profiles import Profile, resolve_config
    from benchmark.registry import load

    entry = load(algorithm)
    profile = Profile(
        name="paper", description="", protocol="honest", data="auto", tasks=(task,),
        algorithms=(algorithm,), seeds=(0,), cost_limits="osrl",
    )  # fmt: skip
    resolved = resolve_config(algorithm, entry.config_cls, task, profile, {})
    return entry, entry.config_cls(**resolved)


def _time_stage(algo, stage, steps: int, warmup: int, device: torch.device) -> float:
    rng = np.random.default_rng(0)
    source = algo.batch_source(stage.name)
    batches = [
        {
            k: torch.as_tensor(v, device=device)
            for k, v in source.sample(rng, stage.batch_size).items()
        }
        for _ in range(min(steps, 8))
    ]
    for i in range(warmup):
        algo.update(stage.name, batches[i % len(batches)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        algo.update(stage.name, batches[i % len(batches)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1000.0


def run(quick: bool) -> list[dict]:
    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps, warmup = (5, 2) if quick else (50, 5)
    rows = []
    for task_name in TASKS:
        task, dataset = _synthetic_dataset(task_name, transitions=20 * task_horizon(task_name))
        for algorithm in ALGORITHMS:
            entry, config = _paper_config(algorithm, task.name)
            ctx = TrainContext(
                task=task,
                dataset=dataset,
                cost_limit=max(task.osrl_cost_limits),
                seed=0,
                device=device,
                cost_limits=tuple(task.osrl_cost_limits),
            )
            torch.manual_seed(0)
            algo = entry.cls(config, ctx)
            fuse_cpu_adam(algo, device)  # as the runner does
            for stage in algo.stages:
                ms = _time_stage(algo, stage, steps, warmup, device)
                rows.append(
                    {
                        "section": "caps_ccac",
                        "what": f"{algorithm} {stage.name} update",
                        "task": f"{task.name} ({task.obs_dim}->{task.act_dim})",
                        "batch": stage.batch_size,
                        "device": device.type,
                        "ms_per_step": ms,
                        "paper_steps": stage.steps,
                        "est_hours": ms * stage.steps / 3.6e6,
                    }
                )
    return rows


def task_horizon(task_name: str) -> int:
    return get_task(task_name).horizon
