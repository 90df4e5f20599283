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

from benchmark.run import PreemptionGuard, RunSpec, Trainer, _to_torch, plan_run


def _trainer(folder: Path, steps: int, batch_size: int) -> Trainer:
    plan = plan_run(
        RunSpec(algorithm="bc_safe", task="ToyVelocity", profile="demo", cost_limit=10.0)
    )
    trainer = Trainer(plan, folder, logging.getLogger("bench.harness"), torch.device("cpu"))
    trainer.build()
    stage = trainer.algorithm.stages[-1]
    trainer.algorithm.stages = (dataclasses.replace(stage, steps=steps, batch_size=batch_size),)
    return trainer


def _bare_seconds(trainer: Trainer, steps: int, batch_size: int) -> float:
    stage = trainer.algorithm.stages[0]
    source = trainer.algorithm.batch_source(stage.name)
    batch = _to_torch(source.sample(np.random.default_rng(0), batch_size), torch.device("cpu"))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.algorithm.update(stage.name, batch)
    return time.perf_counter() - start


def _harness_seconds(trainer: Trainer) -> float:
    start = time.perf_counter()
    with PreemptionGuard() as guard:
        trainer.train(guard, show_progress=False)
    return time.perf_counter() - start


def run(quick: bool) -> list[dict]:
    steps, batch_size = (300, 512) if quick else (2000, 512)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        trainer = _trainer(Path(folder), steps, batch_size)
        _bare_seconds(trainer, 20, batch_size)  # warm-up
        # alternate to spread machine noise over both
        bare, harness = [], []
        for _ in range(2):
            bare.append(_bare_seconds(trainer, steps, batch_size))
            trainer.progress.stage_index, trainer.progress.step = 0, 0
            harness.append(_harness_seconds(trainer))
        bare_s, harness_s = min(bare), min(harness)
    rows.append(
        {
            "section": "harness",
            "what": f"bc_safe ToyVelocity batch {batch_size}, {steps} steps",
            "bare_ms_per_step": 1000 * bare_s / steps,
            "runner_ms_per_step": 1000 * harness_s / steps,
            "overhead_percent": 100 * (harness_s - bare_s) / bare_s,
            "target_percent": 5.0,
        }
    )
    return rows
