"""`make bench` section `phase_a`: DRCORL's behaviour step (phase A, 2M steps at batch 2048 in
the authors' code: the suite's largest single cost) on this CPU, one torch thread.

For each `behavior_speedup` (eager, compile, bf16, compile+bf16) at the `paper` network: CPU
time per `update("behavior", ...)` step at batch 256 and at batch 2048 (`time.process_time`,
median of blocks after a warm-up; compiling is in the warm-up), the ratio to eager, and at
batch 256 a loss curve against eager's over three seeds (`gpu.noise_verdict`: within seed
noise when the mean distance to eager's curve, same seed and noise draws, is at most the mean
spread of eager's curves). The machine line says whether the CPU has native bf16 units
(`cpu_bf16_units`), which is where bf16 can pay. Eager IQL critic and extraction steps at their
`paper` batches are timed beside them for scale (`behavior_speedup` does not touch them).
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from algorithms.drcorl.diffusion import SPEEDUPS
from benchmark.bench.drcorl import _through_update
from benchmark.bench.gpu import (
    CURVE_SEEDS,
    FULL,
    QUICK,
    TINY,
    Loops,
    _drcorl,
    loss_curve,
    noise_verdict,
)
from benchmark.runner.provenance import cpu_bf16_units, cpu_model

SECTION = "phase_a"
BATCHES = (256, 2048)
TINY_BATCHES = (16, 64)
"""`tiny` (tests): small networks (gpu.TINY_CHANGES) and batches; its numbers measure nothing."""
CPU = torch.device("cpu")


def cpu_ms(fn, loops: Loops) -> float:
    """Median over blocks of CPU milliseconds per call (this process, one thread)."""
    for _ in range(loops.warmup):
        fn()
    blocks = []
    for _ in range(loops.repeats):
        start = time.process_time()
        for _ in range(loops.steps):
            fn()
        blocks.append((time.process_time() - start) / loops.steps * 1e3)
    return statistics.median(blocks)


def _behaviour_rows(batch: int, loops: Loops, with_curves: bool, tiny: bool) -> list[dict]:
    eager_curves = []
    if with_curves:
        for seed in CURVE_SEEDS:
            algo = _drcorl(CPU, seed, tiny, behavior_batch_size=batch)
            eager_curves.append(loss_curve(algo, CPU, loops)[0])
    rows, eager_ms = [], None
    for speedup in SPEEDUPS:  # eager first
        algo = _drcorl(
            CPU, CURVE_SEEDS[0], False, behavior_batch_size=batch, behavior_speedup=speedup
        )
        row = {"section": SECTION, "what": f"behaviour step, {speedup}, batch {batch}"}
        if with_curves:
            curve = eager_curves[0] if speedup == "eager" else loss_curve(algo, CPU, loops)[0]
            row.update(noise_verdict(curve, eager_curves))
        ms = cpu_ms(_through_update(algo, "behavior", batch, CPU), loops)
        eager_ms = ms if speedup == "eager" else eager_ms
        row.update({"cpu_ms_per_step": ms, "speedup_vs_eager": eager_ms / ms})
        rows.append(row)
    return rows


def _other_stage_rows(loops: Loops, tiny: bool) -> list[dict]:
    algo = _drcorl(CPU, 0, tiny)
    c = algo.config
    rows = []
    for stage, batch in (("critic", c.critic_batch_size), ("extract", c.policy_batch_size)):
        ms = cpu_ms(_through_update(algo, stage, batch, CPU), loops)
        rows.append(
            {
                "section": SECTION,
                "what": f"{stage} step, eager, batch {batch}",
                "cpu_ms_per_step": ms,
            }
        )
    return rows


def run(quick: bool, tiny: bool = False) -> list[dict]:
    torch.set_num_threads(1)
    loops = dataclasses.replace(QUICK if quick else FULL, curve_steps=200 if quick else 400)
    loops = TINY if tiny else loops
    batches = TINY_BATCHES if tiny else BATCHES
    machine = {
        "section": SECTION,
        "what": "machine",
        "cpu_model": cpu_model(),
        "cpu_bf16_units": " ".join(cpu_bf16_units()) or "none",
    }
    rows = [machine]
    for batch in batches:
        rows += _behaviour_rows(batch, loops, batch == batches[0], tiny)
    return rows + _other_stage_rows(loops, tiny)
