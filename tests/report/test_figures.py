"""`figure-cost-limits` (poster panel b) and the inference figure (panel a), golden records."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.errors import ReportError
from benchmark.report.figures import bench_timings, cost_limits_figure, write_inference_figure
from benchmark.report.published import published_cost_limits
from benchmark.report.records import report_cells


def test_cli_writes_pdf_and_png(golden_results, reports, capsys):
    args = ["figure-cost-limits", "--profile", "golden", "--results", str(golden_results)]
    assert main([*args, "--task", "HalfCheetahVelocity"]) == 0
    for ext in ("pdf", "png"):
        path = reports / "golden" / f"cost_limits_HalfCheetahVelocity.{ext}"
        assert path.stat().st_size > 5000
    assert "inference figure skipped" in capsys.readouterr().out  # no bench file here


def test_bars_per_method_and_limit_with_published_markers(golden_results):
    cells, _, _ = report_cells(golden_results, "golden", table_limits=False)
    fig = cost_limits_figure(cells, "HalfCheetahVelocity", "golden", published_cost_limits())
    ax_r, ax_c = fig.axes
    labels = [t.get_text() for t in ax_c.get_xticklabels()]
    assert labels == ["BC-Safe", "BCQ-Lag", "CPQ", "COptiDICE", "DRCORL"]
    # our cells at (task, limit): bc_safe 10, cpq 10/20, drcorl 10/20/30 -> 6 bars per panel
    assert len(ax_r.patches) == 6 and len(ax_c.patches) == 6
    heights = sorted(round(p.get_height(), 3) for p in ax_r.patches)
    assert heights == [0.35, 0.65, 0.65, 0.82, 0.88, 0.95]
    assert ax_c.get_ylim() == (0.0, 10.0)  # the poster's cost axis: BCQ-Lag's 34 is clipped
    assert any(line.get_ydata()[0] == 1.0 and line.get_linestyle() == "--" for line in ax_c.lines)
    assert len([line for line in ax_r.lines if line.get_marker() == "D"]) == 12
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["l=10", "l=20", "l=30"] and "Threshold = 1.0" in legend


def test_task_without_records_is_an_error(golden_results, reports):
    with pytest.raises(ReportError, match="no records for task CarRun"):
        cells, _, _ = report_cells(golden_results, "golden", table_limits=False)
        cost_limits_figure(cells, "CarRun", "golden", published_cost_limits())
    args = ["figure-cost-limits", "--profile", "golden", "--results", str(golden_results)]
    assert main([*args, "--task", "NoSuchTask"]) == 2


def test_bench_rows_are_read_tolerantly(tmp_path):
    path = tmp_path / "drcorl.json"
    rows = [
        {"section": "drcorl", "what": "policy", "seconds_per_1000_actions": 0.2},
        {"section": "drcorl", "what": "sampler", "ms_per_1000_actions": 9000.0},
        {"section": "drcorl", "what": "update", "steps_per_second": 50.0},
        "not a dict",
    ]
    path.write_text(json.dumps({"machine": {}, "rows": rows}))
    assert bench_timings(path) == [("policy", 0.2), ("sampler", 9.0)]
    path.write_text(json.dumps(rows[:1]))  # a bare list of rows
    assert bench_timings(path) == [("policy", 0.2)]


def test_inference_figure_written_or_skipped_with_a_message(
    tmp_path, capsys, make_record, write_record
):
    for seed in range(2):
        write_record(tmp_path, make_record("drcorl", "CarGoal1", 10.0, seed, 0.8, 0.2))
    cells, _, _ = report_cells(tmp_path, "golden", table_limits=True)
    bench = tmp_path / "drcorl.json"
    assert write_inference_figure(bench, cells, "golden", tmp_path / "out") == []
    bench.write_text(json.dumps({"rows": [{"what": "update", "steps_per_second": 1.0}]}))
    assert write_inference_figure(bench, cells, "golden", tmp_path / "out") == []
    assert "no per-1000-action timings" in capsys.readouterr().out
    bench.write_text(json.dumps({"rows": [{"what": "policy", "seconds_per_1000_actions": 0.3}]}))
    paths = write_inference_figure(bench, cells, "golden", tmp_path / "out")
    assert [p.name for p in paths] == ["inference.pdf", "inference.png"]
