"""`diff` states training budgets: the reference table matches the configs, the stage formulas
match the algorithms' real stages, and the header and rows carry the ratios.

`results/published/reference_budgets.csv` is generated here:
`UPDATE_REFERENCE_BUDGETS=1 .venv/bin/python -m pytest tests/report/test_diff_budgets.py`.
"""

from __future__ import annotations

import dataclasses
import os

import pandas as pd
import pytest
import torch

from benchmark.data import load_dataset
from benchmark.interface import TrainContext
from benchmark.profiles import load_profile, resolve_config
from benchmark.registry import ALGORITHMS, load
from benchmark.report.diff import make_diff, training_samples
from benchmark.report.published import PUBLISHED_DIR, REFERENCE_PROFILE, reference_budgets
from benchmark.tasks import DSRL_TASKS, get_task


def _reference_frame() -> pd.DataFrame:
    profile = load_profile(REFERENCE_PROFILE)
    rows = []
    for name in ALGORITHMS:
        entry = load(name)
        defaults = dataclasses.asdict(entry.config_cls())
        rows.append({"task": "*", "algorithm": name, "samples": training_samples(name, defaults)})
        for task in DSRL_TASKS:
            config = resolve_config(name, entry.config_cls, task.name, profile, {})
            rows.append(
                {"task": task.name, "algorithm": name, "samples": training_samples(name, config)}
            )
    return pd.DataFrame(rows)


def test_reference_budgets_csv_matches_the_paper_configs():
    expected = _reference_frame()
    path = PUBLISHED_DIR / "reference_budgets.csv"
    if os.environ.get("UPDATE_REFERENCE_BUDGETS"):
        expected.to_csv(path, index=False)
    assert expected["samples"].notna().all() and (expected["samples"] > 0).all()
    table = reference_budgets()
    assert {(r.task, r.algorithm): r.samples for r in expected.itertuples()} == table
    # spot checks against the authors' settings (baselines.md 2.3, 3.1, 3.2)
    assert table[("CarGoal1", "bc_safe")] == 100_000 * 512
    assert table[("CarGoal1", "bear_lag")] == 300_000 * 512
    assert table[("CarGoal1", "ccac")] == (200_000 + 200_000) * 512
    assert table[("CarRun", "ccac")] == (100_000 + 100_000) * 1024


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_stage_formula_matches_each_algorithms_real_stages(name):
    entry = load(name)
    task = get_task("ToyVelocity")
    config = resolve_config(name, entry.config_cls, task.name, load_profile("smoke"), {})
    context = TrainContext(
        task=task, dataset=load_dataset(task), cost_limit=10.0, seed=0,
        device=torch.device("cpu"), cost_limits=(10.0,),
    )  # fmt: skip
    algorithm = entry.cls(entry.config_cls(**config), context)
    real = sum(stage.steps * stage.batch_size for stage in algorithm.stages)
    assert training_samples(name, config) == real


def test_diff_header_and_rows_carry_the_budget_ratios(tmp_path, make_record, write_record):
    reference = reference_budgets()
    tenth = {"steps": 10_000, "batch_size": 512}  # a tenth of BC-Safe's 100k x 512
    for seed in range(3):
        write_record(
            tmp_path, make_record("bc_safe", "CarGoal1", 10.0, seed, 0.4, 0.5, config=tenth)
        )
        full = {"steps": 100_000, "batch_size": 512}
        write_record(tmp_path, make_record("cpq", "CarGoal1", 10.0, seed, 0.7, 2.0, config=full))
    assert reference[("CarGoal1", "cpq")] == 100_000 * 512
    report = make_diff(tmp_path, "golden")
    header = report.markdown.split("## Summary")[0]
    assert "relative to the reference `paper` budget set: BC-Safe 0.10, CPQ 1.00." in header
    assert "**Not a reproduction:** BC-Safe ran below the reference budget" in header
    frame = report.frame[(report.frame.table == "table") & (report.frame.task == "CarGoal1")]
    ratios = dict(zip(frame.algorithm, frame.budget_ratio))
    assert ratios["bc_safe"] == pytest.approx(0.1) and ratios["cpq"] == pytest.approx(1.0)
    assert pd.isna(ratios["drcorl"])  # no records: no budget
    assert "| CarGoal1 | BC-Safe | 10 | 3 | ×0.10 |" in report.markdown
    assert "| CarGoal1 | CPQ | 10 | 3 | ×1.00 |" in report.markdown


def test_a_diff_at_the_reference_budget_says_so(tmp_path, make_record, write_record):
    full = {"steps": 100_000, "batch_size": 512}
    for seed in range(2):
        write_record(tmp_path, make_record("cpq", "CarGoal1", 10.0, seed, 0.7, 2.0, config=full))
    header = make_diff(tmp_path, "golden").markdown.split("## Summary")[0]
    assert "Every run is at the reference budget." in header and "Not a reproduction" not in header


def test_ccac_and_drcorl_budgets_sum_their_stages():
    assert training_samples("ccac", {"warmup_steps": 3, "steps": 5, "batch_size": 16}) == 128
    drcorl = {
        "behavior_steps": 10, "behavior_batch_size": 4, "critic_steps": 20,
        "critic_batch_size": 2, "extract_steps": 5, "policy_batch_size": 3,
        "adapt_iterations": 7,
    }  # fmt: skip
    assert training_samples("drcorl", drcorl) == 40 + 40 + 15 + 7 * 6
    # offline switching on the policy-evaluation signal adds `cost_eval` and widens `adapt`
    pe = {"cost_signal": "policy_eval", "pe_init_steps": 5, "pe_batch_size": 2}
    pe["pe_steps_per_iteration"] = 3
    assert training_samples("drcorl", {**drcorl, **pe}) == 95 + 10 + 7 * (6 + 6)
    online = {**drcorl, **pe, "switching": "online"}
    assert training_samples("drcorl", online) == 40 + 40 + 15 + 7 * 6
    assert training_samples("unknown", {"epochs": 3}) is None


def test_cli_prints_the_budget_header(tmp_path, make_record, write_record, reports, capsys):
    from benchmark.cli import main

    tenth = {"steps": 10_000, "batch_size": 512}
    write_record(tmp_path, make_record("bc_safe", "CarGoal1", 10.0, 0, 0.4, 0.5, config=tenth))
    assert main(["diff", "--profile", "golden", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "reference `paper` budget set: BC-Safe 0.10." in out and "Not a reproduction" in out
