"""Harness overhead: a BC-Safe step through the runner vs the bare update on a fixed batch.

The runner's share of a step is batch sampling, the numpy -> torch conversion, progress,
CSV logging and checkpoints at the demo profile's cadence. Target: under 5% of a BC-Safe step
(batch 512, toy task).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmark.interface import to_torch
from benchmark.runner.plan import RunSpec, plan_run
from benchmark.runner.trainer import PreemptionGuard, Trainer


def _trainer(folder: Path, steps: int, batch_size: int) -> Trainer:
    plan = plan_run(
        RunSpec(algorithm="bc_safe", task="ToyVelocity", profile="demo", cost_limit=10.0)
    )
    trainer = Trainer(plan, folder, logging.getLogger("bench.harness"), torch.device("cpu"))
    trainer.build()
    trainer.restore()
    stage = trainer.algorithm.stages[-1]
    trainer.algorithm.stages = (dataclasses.replace(stage, steps=steps, batch_size=batch_size),)
    return trainer


def _bare_seconds(trainer: Trainer, steps: int, batch_size: int) -> float:
    stage = trainer.algorithm.stages[0]
    source = trainer.algorithm.batch_source(stage.name)
    batch = to_torch(source.sample(np.random.default_rng(0), batch_size), torch.device("cpu"))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.algorithm.update(stage.name, batch)
    return time.perf_counter() - start


def _harness_seconds(trainer: Trainer) -> float:
    start = time.perf_counter()
    with PreemptionGuard() as guard:
        trainer.train(guard, show_progress=False)
    return time.perf_counter() - start


def _component_us(trainer: Trainer, batch_size: int, reps: int) -> dict[str, float]:
    """Microseconds per step of the runner's own work, timed one piece at a time."""
    source = trainer.algorithm.batch_source(trainer.algorithm.stages[0].name)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(reps):
        batch = source.sample(rng, batch_size)
    sample = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(reps):
        to_torch(batch, torch.device("cpu"))
    convert = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(10):
        trainer.checkpoint()
    checkpoint = (time.perf_counter() - start) / 10 / trainer.plan.profile.checkpoint_every
    return {
        "sample": 1e6 * sample / reps,
        "to_torch": 1e6 * convert / reps,
        "checkpoint": 1e6 * checkpoint,
    }


def run(quick: bool) -> list[dict]:
    steps, batch_size, repeats = (300, 512, 2) if quick else (2000, 512, 3)
    with tempfile.TemporaryDirectory() as folder:
        trainer = _trainer(Path(folder), steps, batch_size)
        _bare_seconds(trainer, 20, batch_size)  # warm-up
        # alternate to spread machine noise over both; keep the fastest of each
        bare, harness = [], []
        for _ in range(repeats):
            bare.append(_bare_seconds(trainer, steps, batch_size))
            trainer.progress.stage_index, trainer.progress.step = 0, 0
            harness.append(_harness_seconds(trainer))
        bare_s, harness_s = min(bare), min(harness)
        parts = _component_us(trainer, batch_size, 2000)
    step_us = 1e6 * bare_s / steps
    own_us = sum(parts.values())
    return [
        {
            "section": "harness",
            "what": f"bc_safe ToyVelocity batch {batch_size}, {steps} steps, end to end",
            "bare_ms_per_step": step_us / 1000,
            "runner_ms_per_step": 1000 * harness_s / steps,
            "overhead_percent": 100 * (harness_s - bare_s) / bare_s,
            "target_percent": 5.0,
        },
        {
            "section": "harness",
            "what": "the runner's own work per step (sampling, tensors, checkpoints amortised)",
            **{f"{k}_us": v for k, v in parts.items()},
            "overhead_percent": 100 * own_us / step_us,
            "target_percent": 5.0,
        },
    ]
