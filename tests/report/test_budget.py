"""`figure-budget`: budget curves from records at several `--budget-scale`s."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.report.budget import Point, flattens_at, write_budget_report


def _point(scale: float, reward: float, cost: float) -> Point:
    return Point("CarRun", "bc_safe", scale, 2, 10.0 * scale, reward, 0.0, cost, 0.0)


def test_the_curve_flattens_where_reward_stops_moving():
    points = [_point(1, 0.2, 0.5), _point(4, 0.58, 0.5), _point(16, 0.6, 0.5)]
    assert flattens_at(points) == 4
    assert flattens_at(points[:1]) is None


def test_the_report_draws_every_scale_and_names_a_changed_verdict(
    tmp_path, make_record, write_record
):
    results = tmp_path / "results"
    for scale, cost in ((1.0, 0.5), (4.0, 1.5)):
        for seed in range(2):
            record = make_record(
                "bc_safe", "CarRun", 30.0, seed, 0.4 + 0.1 * scale, cost, config={"steps": scale}
            )
            record["budget_scale"] = scale
            record["timing"]["cpu_seconds"] = 60.0 * scale
            write_record(results, record)
    paths = write_budget_report(results, "golden", tmp_path / "out")
    assert {p.name for p in paths} == {"budget.png", "budget.pdf", "budget.md"}
    md = (tmp_path / "out" / "budget.md").read_text()
    assert (
        "| CarRun | BC-Safe | ×1 | 2 | 60 |" in md and "| CarRun | BC-Safe | ×4 | 2 | 240 |" in md
    )
    assert "CHANGES (×1 safe, ×4 unsafe)" in md


def test_a_budget_profile_sweeps_every_scale(tmp_path, capsys):
    path = tmp_path / "curve.yaml"
    path.write_text(
        "name: curve\nbudgets: smoke\ntasks: [ToyVelocity]\nalgorithms: [bc_safe]\n"
        "budget_scales: [1, 4]\nseeds: [0]\n"
    )
    assert main(["sweep", "--profile", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 runs in the profile" in out and "budget x4" in out


def test_budget_scales_must_be_positive(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nbudgets: smoke\ntasks: [ToyVelocity]\nbudget_scales: [1, 0]\n")
    assert main(["sweep", "--profile", str(path), "--dry-run"]) == 2
    assert "budget_scales" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["figure-budget"])
def test_figure_budget_without_records_says_what_to_run(verb, tmp_path, capsys):
    assert main([verb, "--profile", "smoke", "--results", str(tmp_path)]) == 2
    assert "sweep --profile smoke" in capsys.readouterr().err


def test_the_report_says_which_scales_and_seeds_the_records_lack():
    from benchmark.report.budget import coverage_line

    one_seed = Point("CarRun", "caps", 4, 1, 40.0, 0.5, 0.0, 0.5, 0.0)
    line = coverage_line([_point(1, 0.2, 0.5), one_seed], (1, 4, 16), 2)
    assert line.startswith("Records at scales ×1, ×4 of the profile's ×1, ×4, ×16")
    assert "not run: ×16" in line and "1 point(s) with fewer than the profile's 2 seeds" in line
    assert "not run" not in coverage_line([_point(1, 0.2, 0.5)], (1,), 2)
