"""`make bench` section `osrl`: milliseconds per update step of the six osrl-lib adapters at the
`paper` settings, and the projected compute of the `paper` budgets.

Each adapter is built with its `paper` config (Config defaults = OSRL's settings, plus the
per-task YAML overrides) on synthetic data of a real task's shapes (no download needed) and
timed over `update` calls on fixed batches, after warm-up. The batch sampling is the runner's
and is timed separately (`ms_batch`: sample + conversion to tensors).

The projection multiplies the per-step time by OSRL's update steps and the number of runs of
the OSRL protocol: 11 tasks x 3 cost limits x 3 seeds, except CDT, which trains one model per
(task, seed). `quick` times two shapes (CarGoal1 72->2 and CarRun 7->2) and interpolates the
other tasks linearly in the observation size; the full run times every distinct task shape.
The device is the runner's choice (CPU with one torch thread unless a GPU is visible); the
hours of the device that was not measured are reported as "not measured".
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from benchmark.data.dataset import from_arrays
from benchmark.interface import TrainContext, to_torch
from benchmark.runner.trainer import fuse_cpu_adam
from benchmark.tasks import DSRL_TASKS, TaskSpec, get_task

ALGORITHMS = ("bc_safe", "bcq_lag", "bear_lag", "cpq", "coptidice", "cdt")
QUICK_TASKS = ("CarGoal1", "CarRun")
SEEDS = 3
LIMITS = 3


def _synthetic_dataset(task: TaskSpec, episodes: int, seed: int = 0):
    """Random transitions of the task's shapes; short episodes, a sparse cost (CDT's cost
    weighting needs trajectories cheaper than 70)."""
    length = min(task.horizon, 200)
    n = episodes * length
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n + 1, task.obs_dim)).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[length - 1 :: length] = True
    arrays = {
        "observations": obs[:-1],
        "next_observations": obs[1:],
        "actions": rng.uniform(-1, 1, size=(n, task.act_dim)).astype(np.float32),
        "rewards": rng.uniform(0, 1, size=n).astype(np.float32),
        "costs": (rng.uniform(size=n) < 0.02).astype(np.float32),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": timeouts,
    }
    return from_arrays(task.name, arrays, source="generated")


def _paper_config(algorithm: str, task: str):
    from benchmark.profiles import Profile, resolve_config
    from benchmark.registry import load

    entry = load(algorithm)
    profile = Profile(
        name="paper", description="", protocol="honest", data="auto", tasks=(task,),
        algorithms=(algorithm,), seeds=(0,), cost_limits="osrl",
    )  # fmt: skip
    return entry, entry.config_cls(**resolve_config(algorithm, entry.config_cls, task, profile, {}))


def _time_updates(algorithm, device: torch.device, quick: bool) -> tuple[float, float, int]:
    """(ms per update, ms per batch, timed steps): at least 2 steps and about 1 s (quick) or
    5 s of updates, after 2 warm-up steps."""
    stage = algorithm.stages[0]
    source = algorithm.batch_source(stage.name)
    rng = np.random.default_rng(0)

    def batch():
        return to_torch(source.sample(rng, stage.batch_size), device)

    start = time.perf_counter()
    batches = [batch() for _ in range(4)]
    ms_batch = (time.perf_counter() - start) / 4 * 1e3
    for i in range(2):
        algorithm.update(stage.name, batches[i])
    budget, steps, elapsed = (1.0 if quick else 5.0), 0, 0.0
    while steps < 2 or (elapsed < budget and steps < 200):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        algorithm.update(stage.name, batches[steps % len(batches)])
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - start
        steps += 1
    return elapsed / steps * 1e3, ms_batch, steps


def _measure(algorithm: str, task: TaskSpec, device: torch.device, quick: bool) -> dict:
    entry, config = _paper_config(algorithm, task.name)
    dataset = _synthetic_dataset(task, episodes=60)
    limits = tuple(task.osrl_cost_limits)
    ctx = TrainContext(
        task=task,
        dataset=dataset,
        cost_limit=max(limits),
        seed=0,
        device=device,
        cost_limits=limits,
    )
    torch.manual_seed(0)
    adapter = entry.cls(config, ctx)
    fuse_cpu_adam(adapter, device)  # as the runner does
    ms, ms_batch, steps = _time_updates(adapter, device, quick)
    stage = adapter.stages[0]
    return {
        "section": "osrl",
        "what": f"{algorithm} update",
        "task": f"{task.name} ({task.obs_dim}->{task.act_dim})",
        "batch": stage.batch_size,
        "device": device.type,
        "threads": torch.get_num_threads(),
        "load_avg": round(os.getloadavg()[0], 2),  # the machine is shared: context for the ms
        "ms_per_step": ms,
        "ms_batch": ms_batch,
        "timed_steps": steps,
        "paper_steps": stage.steps,
        "hours_per_run": ms * stage.steps / 3.6e6,
    }


def _interpolated_ms(measured: dict[str, dict], task: TaskSpec) -> float:
    """Per-step time of `task` from the quick shapes: linear in the observation size, clamped
    at the measured ends."""
    points = sorted((get_task(name).obs_dim, row["ms_per_step"]) for name, row in measured.items())
    sizes, times = zip(*points)
    return float(np.interp(task.obs_dim, sizes, times))


def _projection(algorithm: str, per_task_ms: dict[str, float], device: str, how: str) -> dict:
    _, config = _paper_config(algorithm, "CarRun")
    runs_per_task = SEEDS if algorithm == "cdt" else SEEDS * LIMITS
    hours = sum(ms * config.steps * runs_per_task / 3.6e6 for ms in per_task_ms.values())
    measured = {"cpu": "not measured", "gpu": "not measured"}
    measured["gpu" if device == "cuda" else "cpu"] = round(hours, 1)
    return {
        "section": "osrl",
        "what": f"{algorithm} paper profile, projected",
        "runs": runs_per_task * len(per_task_ms),
        "steps_per_run": config.steps,
        "cpu_hours": measured["cpu"],
        "gpu_hours": measured["gpu"],
        "per_task_ms": how,
    }


def run(quick: bool) -> list[dict]:
    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if quick:
        shapes = {name: get_task(name) for name in QUICK_TASKS}
    else:  # one task per distinct (obs, act) shape
        shapes = {}
        for task in DSRL_TASKS:
            shapes.setdefault((task.obs_dim, task.act_dim), task)
        shapes = {task.name: task for task in shapes.values()}
    rows = []
    for algorithm in ALGORITHMS:
        measured = {name: _measure(algorithm, task, device, quick) for name, task in shapes.items()}
        rows.extend(measured.values())
        per_task, how = {}, "measured per shape"
        for task in DSRL_TASKS:
            if task.name in measured:
                per_task[task.name] = measured[task.name]["ms_per_step"]
            elif not quick:
                same = next(
                    r for n, r in measured.items()
                    if (get_task(n).obs_dim, get_task(n).act_dim) == (task.obs_dim, task.act_dim)
                )  # fmt: skip
                per_task[task.name] = same["ms_per_step"]
            else:
                per_task[task.name] = _interpolated_ms(measured, task)
                how = "CarGoal1/CarRun measured, others interpolated in obs dim"
        rows.append(_projection(algorithm, per_task, device.type, how))
    return rows
