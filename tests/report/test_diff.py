"""`diff` on the golden records: ours beside the published cells, verdict flips, missing cells."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.report.diff import make_diff


def _row(
    frame: pd.DataFrame, task: str, algorithm: str, table: str = "table", limit: float = 10.0
) -> pd.Series:
    hit = frame[
        (frame.table == table)
        & (frame.task == task)
        & (frame.algorithm == algorithm)
        & (frame.cost_limit == limit)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def test_every_published_cell_is_listed_compared_or_missing(golden_results):
    frame = make_diff(golden_results, "golden").frame
    table = frame[frame.table == "table"]
    assert len(table) == 107 and (table.status == "compared").sum() == 6
    assert len(frame[frame.table == "cost-limit ablation"]) == 12
    assert _row(frame, "CarGoal2", "drcorl").status == "missing"


def test_deltas_are_ours_minus_published(golden_results):
    row = _row(make_diff(golden_results, "golden").frame, "CarGoal1", "drcorl")
    assert row.ours_reward == pytest.approx(0.75) and row.published_reward == pytest.approx(0.91)
    assert row.d_reward == pytest.approx(-0.16) and row.d_cost == pytest.approx(0.30)
    assert not row.verdict_flip


def test_verdict_flips_both_ways(golden_results):
    report = make_diff(golden_results, "golden")
    frame = report.frame
    bc = _row(frame, "HalfCheetahVelocity", "bc_safe")  # ours 1.40 vs published 0.71
    assert bc.verdict_flip and bc.flip == "published safe, ours unsafe"
    cpq = _row(frame, "HalfCheetahVelocity", "cpq")  # ours 0.20 vs published 14.70
    assert cpq.verdict_flip and cpq.flip == "published unsafe, ours safe"
    assert not _row(frame, "CarGoal1", "cpq").verdict_flip  # both unsafe
    # the same CPQ cell in the cost-limit ablation (14.7) flips too
    assert _row(frame, "HalfCheetahVelocity", "cpq", "cost-limit ablation").verdict_flip
    assert len(report.flips) == 3
    assert "**flip: published safe, ours unsafe**" in report.markdown


def test_doubtful_cells_are_marked(golden_results):
    report = make_diff(golden_results, "golden")
    row = _row(report.frame, "HalfCheetahVelocity", "drcorl")
    assert row.doubtful and "notebook" in row.doubtful_reason
    assert "| HalfCheetahVelocity | DRCORL | 10 | 3 | ? | 0.65 ± 0.01 | 0.86† |" in report.markdown


def test_missing_cells_and_other_limits_are_listed(golden_results):
    md = make_diff(golden_results, "golden").markdown
    assert "- CarRun (κ = 10, 30): BC-Safe (κ 10, 30), BEAR-Lag (κ 10, 30)," in md
    assert "CPQ (κ 30) [records only at cost limit(s) 10, 20]" in md


def test_a_profile_without_published_tasks_reports_no_overlap(tmp_path, make_record, write_record):
    for seed in range(2):
        write_record(tmp_path, make_record("drcorl", "ToyVelocity", 10.0, seed, 0.5, 0.5))
    report = make_diff(tmp_path, "golden")
    assert (report.frame.status == "missing").all()
    assert "None of this profile's cells are in the published table" in report.markdown


def test_cli_writes_md_and_csv_and_fail_on_flip_exits_1(golden_results, reports, capsys):
    args = ["diff", "--profile", "golden", "--results", str(golden_results)]
    assert main(args) == 0
    assert main([*args, "--fail-on-flip"]) == 1
    assert "3 safety verdict(s) flip" in capsys.readouterr().out
    csv = pd.read_csv(reports / "golden" / "diff.csv")
    assert len(csv) == 119 and csv.verdict_flip.sum() == 3
    assert (reports / "golden" / "diff.md").read_text().startswith("# Profile golden")


def test_fail_on_flip_passes_without_flips(tmp_path, reports, make_record, write_record):
    for seed in range(2):  # published DRCORL CarGoal1 is safe; ours too
        write_record(tmp_path, make_record("drcorl", "CarGoal1", 10.0, seed, 0.8, 0.2))
    assert main(["diff", "--profile", "golden", "--results", str(tmp_path), "--fail-on-flip"]) == 0


def test_carrun_baselines_are_compared_at_both_candidate_limits(
    tmp_path, make_record, write_record
):
    """The poster's CarRun baseline threshold is assumed (30): a record at 10 is compared too."""
    for seed in range(2):
        write_record(tmp_path, make_record("bc_safe", "CarRun", 10.0, seed, 0.9, 0.4))
    frame = make_diff(tmp_path, "golden").frame
    rows = frame[(frame.task == "CarRun") & (frame.algorithm == "bc_safe")]
    assert sorted(rows.cost_limit) == [10.0, 30.0]
    at_10 = rows[rows.cost_limit == 10.0].iloc[0]
    assert at_10.status == "compared" and at_10.doubtful
    assert at_10.published_reward == pytest.approx(0.97)
    assert "listed at κ=30 (assumed)" in at_10.note
    assert rows[rows.cost_limit == 30.0].iloc[0].status == "missing"


def test_the_header_says_when_the_data_is_not_dsrls(tmp_path, make_record, write_record):
    for seed in range(2):
        write_record(
            tmp_path / "dsrl",
            make_record("drcorl", "CarGoal1", 10.0, seed, 0.8, 0.2, source="dsrl"),
        )
        write_record(
            tmp_path / "gen",
            make_record("drcorl", "CarGoal1", 10.0, seed, 0.8, 0.2, source="generated"),
        )
    assert "Not DSRL's data" not in make_diff(tmp_path / "dsrl", "golden").markdown
    md = make_diff(tmp_path / "gen", "golden").markdown
    assert "**Not DSRL's data:** runs of this profile trained on generated data" in md
