"""`make bench` section `phase_a` (its numbers need the paper networks; `tiny` tests it)."""

from __future__ import annotations

from algorithms.drcorl.diffusion import SPEEDUPS
from benchmark.bench import phase_a
from benchmark.runner.provenance import BF16_FLAGS, cpu_bf16_units


def test_tiny_run_times_every_variant_at_both_batches_with_the_loss_check():
    rows = phase_a.run(quick=True, tiny=True)
    assert rows[0]["what"] == "machine" and "cpu_bf16_units" in rows[0]
    behaviour = [r for r in rows if r["what"].startswith("behaviour step")]
    assert len(behaviour) == len(SPEEDUPS) * len(phase_a.TINY_BATCHES)
    assert all(r["cpu_ms_per_step"] > 0 and r["speedup_vs_eager"] > 0 for r in behaviour)
    first = [r for r in behaviour if r["what"].endswith(f"batch {phase_a.TINY_BATCHES[0]}")]
    assert all("within_seed_noise" in r for r in first)
    assert (
        first[0]["what"].startswith("behaviour step, eager") and first[0]["speedup_vs_eager"] == 1
    )
    assert {r["what"].split(",")[0] for r in rows[-2:]} == {"critic step", "extract step"}


def test_bf16_units_are_read_from_the_cpu_flags():
    assert set(cpu_bf16_units()) <= set(BF16_FLAGS)
