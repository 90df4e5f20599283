"""`make bench` section `demo`: where the time of `make table` goes, per method.

Every algorithm is built with its `demo` config on each demo task, and each of its stages is
timed per update step (CPU time of this process, one torch thread, after warm-up) on batches
the algorithm's own batch source draws. A step's time times the stage's budget is one
training's cost; the profile's runs multiply it (a stage shared across cost limits is trained
once per task and seed, as the sweep groups those runs). The runs counted are those `make
table` trains (`sweep --table-only`). One evaluation (the profile's episodes and envs) is timed
the same way and counted once per record. Optimizers are fused as the runner fuses them. The
sum over methods divided by the sweep's workers is the projected wall time of `make table`'s
sweep on an idle machine:
the number the 5-minute target is about, without the noise of timing a whole sweep.

Rows carry `before_cpu_s` from `reports/bench/demo_before.json` when that file has the same
method and task: this measurement as it was before `make table` was made faster (every run of
the demo profile, the budgets of then, per-tensor Adam), as this section measured it on commit
dee24f0; see the README's "What make table shows".
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch

from benchmark.data import load_dataset
from benchmark.envs import make_vector_env
from benchmark.evaluate import evaluate
from benchmark.interface import TrainContext, to_torch
from benchmark.paths import reports_dir
from benchmark.profiles import load_profile, resolve_config
from benchmark.registry import load
from benchmark.runner.trainer import fuse_cpu_adam
from benchmark.tasks import get_task

PROFILE = "demo"
WORKERS = 2  # `make table` on the 2-core machine the target is set for
BEFORE_FILE = "demo_before.json"


def _cpu_seconds_per_step(algorithm, stage, budget_s: float) -> tuple[float, int]:
    """(CPU s per update, steps timed): at least 3 steps and about `budget_s`, after 2."""
    source = algorithm.batch_source(stage.name)
    rng = np.random.default_rng(0)
    device = torch.device("cpu")

    def step() -> None:
        algorithm.update(stage.name, to_torch(source.sample(rng, stage.batch_size), device))

    for _ in range(min(2, stage.steps)):
        step()
    steps, start = 0, time.process_time()
    while steps < min(3, stage.steps) or (
        time.process_time() - start < budget_s and steps < stage.steps
    ):
        step()
        steps += 1
    return (time.process_time() - start) / steps, steps


def _evaluation_cpu_s(algorithm, task, limit: float, profile) -> float:
    env = make_vector_env(task, profile.num_eval_envs)
    try:
        policy = algorithm.policy(limit, profile.num_eval_envs)
        start = time.process_time()
        evaluate(policy, env, task, limit, 0.0, profile.eval_episodes)
        return time.process_time() - start
    finally:
        env.close()


def _measure(name: str, task_name: str, profile, budget_s: float) -> dict:
    entry = load(name)
    task = get_task(task_name)
    config = resolve_config(name, entry.config_cls, task_name, profile, {})
    limits = profile.limits_for(task, name)
    # `make table` trains the runs its table shows (sweep --table-only): a cost-conditioned
    # model serves every limit, the others train at the table's limits only
    trained = limits if entry.cost_conditioned else profile.table_limits_for(task)
    context = TrainContext(
        task=task,
        dataset=load_dataset(task, source=profile.data),
        cost_limit=max(limits),
        seed=0,
        device=torch.device("cpu"),
        cost_limits=tuple(limits),
    )
    torch.manual_seed(0)
    algorithm = entry.cls(entry.config_cls(**config), context)
    fuse_cpu_adam(algorithm, context.device)  # as the runner does
    seeds = len(profile.seeds)
    trainings = seeds if entry.cost_conditioned else seeds * len(trained)
    train_s, detail = 0.0, []
    for stage in algorithm.stages:
        per_step, _ = _cpu_seconds_per_step(algorithm, stage, budget_s)
        runs = seeds if stage.shared_across_cost_limits else trainings
        train_s += per_step * stage.steps * runs
        detail.append(f"{stage.name} {stage.steps}x{stage.batch_size} {per_step * 1e3:.2f}ms")
    eval_s = _evaluation_cpu_s(algorithm, task, max(limits), profile) * seeds * len(trained)
    return {
        "section": "demo",
        "what": f"{name} {task_name}",
        "stages": ", ".join(detail),
        "trainings": trainings,
        "train_cpu_s": train_s,
        "eval_cpu_s": eval_s,
        "cpu_s": train_s + eval_s,
        "load_avg": round(os.getloadavg()[0], 2),  # context: CPU time is robust, not immune
    }


def _before() -> dict[str, float]:
    path = reports_dir() / "bench" / BEFORE_FILE
    if not path.exists():
        return {}
    return {row["what"]: row["cpu_s"] for row in json.loads(path.read_text())["rows"]}


def run(quick: bool) -> list[dict]:
    torch.set_num_threads(1)
    profile = load_profile(PROFILE)
    budget_s = 0.5 if quick else 2.0
    rows = [
        _measure(name, task, profile, budget_s)
        for name in profile.algorithms
        for task in profile.tasks
    ]
    before = _before()
    for row in rows:
        if row["what"] in before:
            row["before_cpu_s"] = before[row["what"]]
    total = sum(r["cpu_s"] for r in rows)
    summary = {
        "section": "demo",
        "what": f"make table's sweep, projected ({WORKERS} workers, idle machine)",
        "cpu_s": total,
        "wall_min": total / WORKERS / 60,
        "target_wall_min": 5.0,
    }
    if before and all("before_cpu_s" in r for r in rows):
        summary["before_wall_min"] = sum(before.values()) / WORKERS / 60
    rows.append(summary)
    return rows
