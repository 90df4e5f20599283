"""`make bench` section `gpu`: skipped without CUDA, end to end on the CPU with tiny sizes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from benchmark.bench import gpu
from benchmark.cli import main
from benchmark.profiles import load_profile
from benchmark.registry import algorithm_names, load
from benchmark.tasks import get_task


def test_skipped_with_one_clear_line_where_no_cuda_is_visible(results_dir, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.run(quick=True) == [{"section": "gpu", "what": "GPU section", "note": gpu.SKIP_NOTE}]
    assert main(["bench", "--only", "gpu"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert printed == ["[gpu]", f"  section=gpu  what=GPU section  note={gpu.SKIP_NOTE}"]
    written = json.loads((results_dir.parent / "reports" / "bench" / "gpu.json").read_text())
    assert written["rows"][0]["note"].startswith("skipped: no CUDA device visible")


def _stage_rows(name: str, stages: dict[str, tuple[int, bool]], ms: float) -> list[dict]:
    return [
        {"stage": s, "paper_steps": steps, "shared_across_cost_limits": shared, "ms_per_step": ms}
        for s, (steps, shared) in stages.items()
    ]


def test_projection_counts_runs_and_shares_cost_limit_free_stages():
    """paper-cost-limits: HalfCheetahVelocity x 3 seeds x 3 limits; DRCORL's shared stages
    train once per seed (artifacts), its adapt stage once per run."""
    drcorl = _stage_rows(
        "drcorl",
        {"behavior": (2_000_000, True), "critic": (500_000, True), "adapt": (2000, False)},
        ms=2.0,
    )
    by_task = {("drcorl", "HalfCheetahVelocity"): drcorl}
    by_task[("cpq", "HalfCheetahVelocity")] = _stage_rows("cpq", {"train": (100_000, False)}, 3.0)
    rows = gpu.project("paper-cost-limits", by_task, torch.device("cuda"), tiny=False)
    hours = {r["algorithm"]: r["device_hours"] for r in rows}
    assert hours["drcorl"] == pytest.approx((3 * 2_500_000 + 9 * 2000) * 2.0 / 3.6e6)
    assert hours["cpq"] == pytest.approx(9 * 100_000 * 3.0 / 3.6e6)
    assert hours["all"] == pytest.approx(hours["drcorl"] + hours["cpq"])
    assert [r["runs"] for r in rows] == [9, 9, 18]


def test_noise_verdict_compares_distance_to_eager_with_the_seed_spread():
    eager = [[1.0, 0.8, 0.6], [1.2, 0.9, 0.65], [1.1, 0.85, 0.62]]
    close = gpu.noise_verdict([1.01, 0.81, 0.61], eager)
    assert close["within_seed_noise"] and close["mean_deviation"] == pytest.approx(0.01)
    assert close["mean_seed_spread"] == pytest.approx((0.2 + 0.1 + 0.05) / 3)
    assert not gpu.noise_verdict([1.5, 1.3, 1.1], eager)["within_seed_noise"]


@pytest.fixture(scope="module")
def tiny_rows():
    """The whole section on the CPU at tiny sizes (every algorithm; eager and bf16: compiling
    on the CPU takes a minute, tests/algorithms/drcorl/test_diffusion_speedup.py covers it)."""
    return gpu.run(quick=True, device="cpu", tiny=True, variants=("eager", "bf16"))


def _kind(rows: list[dict], key: str) -> list[dict]:
    return [r for r in rows if key in r]


@pytest.mark.slow
def test_tiny_cpu_run_times_every_algorithms_stages(tiny_rows):
    assert tiny_rows[0]["what"] == "machine" and tiny_rows[0]["device"] == "cpu"
    methods = [r for r in tiny_rows if "stage" in r]
    assert {r["algorithm"] for r in methods} == set(algorithm_names())
    for row in methods:
        assert row["ms_per_step"] > 0 and math.isfinite(row["ms_per_step"])
        assert row["peak_mib"] is None  # CUDA memory only
        assert row["tiny"] and row["timed_batch"] <= row["batch"] and row["stands_for"]
    drcorl = {r["stage"] for r in methods if r["algorithm"] == "drcorl"}
    assert drcorl == {"behavior", "critic", "extract", "cost_eval", "adapt"}
    json.dumps(tiny_rows)  # the section's JSON file is written from these rows


@pytest.mark.slow
def test_tiny_cpu_projections_multiply_out(tiny_rows):
    methods = [r for r in tiny_rows if "stage" in r]
    projections = _kind(tiny_rows, "device_hours")
    for name in gpu.PROFILES:
        profile = load_profile(name)
        mine = {r["algorithm"]: r for r in projections if r["profile"] == name}
        assert set(mine) == {*profile.algorithms, "all"}
        for algorithm in profile.algorithms:
            conditioned = load(algorithm).cost_conditioned
            expected, runs = 0.0, 0
            for task in profile.tasks:
                seeds = len(profile.seeds)
                limits = len(profile.limits_for(get_task(task), algorithm))
                task_runs = seeds if conditioned else seeds * limits
                runs += task_runs
                for row in methods:
                    if row["algorithm"] == algorithm and task in row["stands_for"]:
                        times = seeds if row["shared_across_cost_limits"] else task_runs
                        expected += times * row["paper_steps"] * row["ms_per_step"] / 3.6e6
            assert mine[algorithm]["device_hours"] == pytest.approx(expected, rel=1e-12)
            assert mine[algorithm]["runs"] == runs
        total = sum(mine[a]["device_hours"] for a in profile.algorithms)
        assert mine["all"]["device_hours"] == pytest.approx(total)


@pytest.mark.slow
def test_tiny_cpu_speedup_rows_and_inference(tiny_rows):
    variants = {r["speedup_variant"]: r for r in _kind(tiny_rows, "speedup_variant")}
    assert list(variants) == ["eager", "bf16"]
    eager, bf16 = variants["eager"], variants["bf16"]
    assert eager["speedup_vs_eager"] == 1.0 and eager["mean_deviation"] == 0.0
    assert len(eager["eager_curves"]) == len(gpu.CURVE_SEEDS)
    assert eager["eager_curves"][0] == eager["loss_curve"]
    for row in variants.values():
        assert len(row["loss_curve"]) == gpu.TINY.curve_windows
        assert np.all(np.isfinite(row["loss_curve"])) and row["ms_per_step"] > 0
        assert isinstance(row["within_seed_noise"], bool)
    # same noise draws, bf16 arithmetic: close to eager's curve but not equal to it
    assert 0 < bf16["mean_deviation"] < 0.05 * np.mean(eager["loss_curve"])
    inference = _kind(tiny_rows, "s_per_1000_actions")
    labels = [r["what"] for r in inference]
    assert any("policy" in w for w in labels) and any("sampler" in w for w in labels)
    assert all(r["device"] == "cpu" and r["section"] == "gpu" for r in inference)
