"""Selecting and grouping records into cells; what is refused and what is labelled."""

from __future__ import annotations

import json

import pytest

from benchmark.errors import ReportError
from benchmark.report.records import build_cells, load_records, report_cells, select_table_limits


def _cell(cells, task, algorithm, limit=10.0):
    return next(c for c in cells if (c.task, c.algorithm, c.cost_limit) == (task, algorithm, limit))


def test_reads_one_row_per_record_with_episode_means(golden_results):
    frame, _ = load_records(golden_results, "golden")
    assert len(frame) == 33
    row = frame[(frame.task == "CarGoal1") & (frame.algorithm == "cpq") & (frame.seed == 2)]
    assert row["reward"].item() == pytest.approx(1.0) and row["cost"].item() == pytest.approx(2.5)
    assert row["protocol"].item() == "honest" and row["eval_episodes"].item() == 20


def test_cell_is_mean_and_sample_std_over_seed_means(golden_results):
    cells, _, _ = report_cells(golden_results, "golden", table_limits=True)
    cell = _cell(cells, "CarGoal1", "drcorl")
    assert cell.seeds == (0, 1, 2)
    assert cell.reward_mean == pytest.approx(0.75)
    assert cell.reward_std == pytest.approx(0.05)  # ddof=1
    assert cell.cost_se == pytest.approx(0.1 / 3**0.5)
    assert cell.safe and not _cell(cells, "CarGoal1", "cpq").safe


def test_table_keeps_each_tasks_drcorl_limit_and_says_what_it_left_out(golden_results):
    records, _ = load_records(golden_results, "golden")
    kept, notes = select_table_limits(records)
    assert set(kept["cost_limit"]) == {10.0}
    assert len(notes) == 1 and "HalfCheetahVelocity" in notes[0] and "20, 30" in notes[0]


@pytest.mark.parametrize(
    ("spec", "limits"),
    [("drcorl", {10.0}), ("osrl", {10.0, 20.0}), (20, {20.0}), ([10, 30], {10.0, 30.0}),
     ({"HalfCheetahVelocity": [20, 30], "default": "drcorl"}, {10.0, 20.0, 30.0})],
)  # fmt: skip
def test_table_limits_follow_the_profiles_table_cost_limits(golden_results, spec, limits):
    kept, _ = select_table_limits(load_records(golden_results, "golden")[0], spec)
    assert set(kept["cost_limit"]) == limits


def test_no_records_says_to_run_the_sweep_first(tmp_path, monkeypatch):
    # another results folder: the command keeps it (`make table` cannot take one)
    with pytest.raises(ReportError, match=f"sweep --profile demo --results {tmp_path} --wait"):
        load_records(tmp_path, "demo")
    monkeypatch.setenv("BENCHMARK_RESULTS_DIR", str(tmp_path))  # the default folder
    with pytest.raises(ReportError, match="make table PROFILE=demo"):
        load_records(tmp_path, "demo")


def test_an_unknown_profile_is_named_not_suggested(tmp_path):
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown profile 'nosuch'; known: .*demo"):
        load_records(tmp_path, "nosuch")


def test_invalid_records_stop_a_report_unless_skipped(tmp_path, capsys, make_record, write_record):
    write_record(tmp_path, make_record("cpq", "ToyVelocity", 10.0, 0, 0.5, 0.5))
    folder = tmp_path / "runs" / "golden"
    (folder / "abc.json").write_text("{not json")
    (folder / "def.json").write_text("")  # an empty file: a truncated write
    with pytest.raises(ReportError, match=r"2 CORRUPT run record\(s\).*abc.json.*--skip-invalid"):
        load_records(tmp_path, "golden")
    frame, notes = load_records(tmp_path, "golden", skip_invalid=True)
    assert len(frame) == 1
    assert notes == ["2 invalid record file(s) skipped (--skip-invalid): abc.json, def.json."]
    err = capsys.readouterr().err
    assert "abc.json" in err and "def.json" in err
    cells, cell_notes, _ = report_cells(tmp_path, "golden", table_limits=True, skip_invalid=True)
    assert len(cells) == 1 and notes[0] in cell_notes


def test_only_invalid_records_is_an_error_that_says_so(tmp_path):
    folder = tmp_path / "runs" / "demo"
    folder.mkdir(parents=True)
    (folder / "abc.json").write_text("{not json")
    with pytest.raises(ReportError, match="1 CORRUPT"):
        load_records(tmp_path, "demo")
    with pytest.raises(ReportError, match="1 invalid file"):
        load_records(tmp_path, "demo", skip_invalid=True)


def test_record_of_another_profile_in_the_folder_is_refused(tmp_path, make_record):
    record = make_record("cpq", "ToyVelocity", 10.0, 0, 0.5, 0.5, profile="cpu")
    folder = tmp_path / "runs" / "demo"
    folder.mkdir(parents=True)
    (folder / "x.json").write_text(json.dumps(record))
    with pytest.raises(ReportError, match="profile 'cpu'"):
        load_records(tmp_path, "demo")


def test_mixed_protocols_in_one_cell_are_refused(tmp_path, make_record, write_record, protocol):
    write_record(tmp_path, make_record("cpq", "ToyVelocity", 10.0, 0, 0.5, 0.5))
    paper = {**protocol, "name": "paper", "cost_normalisation": "C/(kappa+0.1)"}
    write_record(tmp_path, make_record("cpq", "ToyVelocity", 10.0, 1, 0.5, 0.5, protocol=paper))
    with pytest.raises(ReportError, match="mix evaluation protocols"):
        report_cells(tmp_path, "golden", table_limits=True)


def test_different_episode_counts_in_one_cell_are_refused(
    tmp_path, make_record, write_record, protocol
):
    write_record(tmp_path, make_record("cpq", "ToyVelocity", 10.0, 0, 0.5, 0.5))
    fifty = {**protocol, "eval_episodes": 50}
    write_record(tmp_path, make_record("cpq", "ToyVelocity", 10.0, 1, 0.5, 0.5, protocol=fifty))
    with pytest.raises(ReportError, match="50 episodes"):
        report_cells(tmp_path, "golden", table_limits=True)


def test_mixed_data_sources_in_one_cell_are_refused(tmp_path, make_record, write_record):
    write_record(tmp_path, make_record("cpq", "CarGoal1", 10.0, 0, 0.5, 0.5, source="dsrl"))
    write_record(tmp_path, make_record("cpq", "CarGoal1", 10.0, 1, 0.5, 0.5, source="generated"))
    with pytest.raises(ReportError, match="mix datasets"):
        report_cells(tmp_path, "golden", table_limits=True)


def test_same_source_different_sha_in_one_cell_is_refused(tmp_path, make_record, write_record):
    write_record(tmp_path, make_record("cpq", "CarGoal1", 10.0, 0, 0.5, 0.5, sha256="a" * 64))
    write_record(tmp_path, make_record("cpq", "CarGoal1", 10.0, 1, 0.5, 0.5, sha256="b" * 64))
    with pytest.raises(ReportError, match="mix datasets"):
        report_cells(tmp_path, "golden", table_limits=True)


def test_two_configs_for_one_seed_are_refused(tmp_path, make_record, write_record):
    write_record(tmp_path, make_record("cpq", "ToyVelocity", 10.0, 0, 0.5, 0.5))
    write_record(
        tmp_path, make_record("cpq", "ToyVelocity", 10.0, 0, 0.6, 0.5, config={"steps": 200})
    )
    with pytest.raises(ReportError, match="2 records for seed 0"):
        report_cells(tmp_path, "golden", table_limits=True)


def test_missing_seed_is_labelled_not_refused(tmp_path, write_golden):
    write_golden(tmp_path, skip={("CarGoal1", "cpq", 10.0, 1)})
    cells, _, _ = report_cells(tmp_path, "golden", table_limits=True)
    short = _cell(cells, "CarGoal1", "cpq")
    assert short.seeds == (0, 2) and short.missing_seeds == (1,)
    assert short.reward_mean == pytest.approx(0.9)  # over the seeds it has
    assert all(not c.missing_seeds for c in cells if c is not short)


def test_expected_seeds_from_the_profile_label_every_short_cell(golden_results):
    records, _ = load_records(golden_results, "golden")
    cells = build_cells(records, expected_seeds=range(5))
    assert all(c.missing_seeds == (3, 4) for c in cells)


def test_other_protocol_or_dataset_across_cells_is_labelled(
    tmp_path, make_record, write_record, write_golden, protocol
):
    write_golden(tmp_path)
    paper = {**protocol, "name": "paper", "online": True}
    for seed in range(3):
        write_record(
            tmp_path, make_record("caps", "CarGoal1", 10.0, seed, 0.5, 0.5, protocol=paper)
        )
        write_record(tmp_path, make_record("ccac", "CarGoal1", 10.0, seed, 0.5, 0.5, source="dsrl"))
    cells, _, _ = report_cells(tmp_path, "golden", table_limits=True)
    assert _cell(cells, "CarGoal1", "caps").other_protocol
    assert _cell(cells, "CarGoal1", "ccac").other_data
    assert not any(
        c.other_protocol or c.other_data for c in cells if c.algorithm not in ("caps", "ccac")
    )
