"""benchmark.data.card: dataset statistics, the docs/datasets.md verdict, the scatter and CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.data import card as card_module
from benchmark.data.card import (
    criteria_warning,
    dataset_card,
    describe_failures,
    failed_criteria,
    format_card,
    grid_occupancy,
    scatter_png,
)
from benchmark.data.dataset import from_arrays
from benchmark.data.dsrl import write_dataset
from benchmark.tasks import get_task

TASK = get_task("CarRun")  # R in [204.3, 574.7], max cost 40, horizon 200
LENGTH = 40


def trajectories(returns, costs, terminal=None, task=TASK):
    """A dataset whose trajectories have exactly these returns and (integer) costs.

    The whole return sits on the first step and the cost is one per step for the first C steps,
    so the sums are exact in float32.
    """
    n = len(returns)
    terminal = np.zeros(n, dtype=bool) if terminal is None else np.asarray(terminal)
    rows = n * LENGTH
    rewards = np.zeros(rows, dtype=np.float32)
    step_costs = np.zeros(rows, dtype=np.float32)
    terminals = np.zeros(rows, dtype=bool)
    timeouts = np.zeros(rows, dtype=bool)
    for i, (ret, cost) in enumerate(zip(returns, costs)):
        start = i * LENGTH
        rewards[start] = ret
        step_costs[start : start + int(cost)] = 1.0
        (terminals if terminal[i] else timeouts)[start + LENGTH - 1] = True
    rng = np.random.default_rng(0)
    states = rng.normal(size=(rows + 1, task.obs_dim)).astype(np.float32)
    arrays = {
        "observations": states[:-1],
        "next_observations": states[1:].copy(),  # not a view: tests edit it
        "actions": np.zeros((rows, task.act_dim), dtype=np.float32),
        "rewards": rewards,
        "costs": step_costs,
        "terminals": terminals,
        "timeouts": timeouts,
    }
    return from_arrays(task.name, arrays, source="generated")


def meaningful_dataset():
    """100 trajectories at kappa=10: 30% safe, 40% above 2 kappa, best safe return 550."""
    costs = [0] * 20 + [5] * 10 + [15] * 30 + [30] * 40
    returns = list(np.linspace(250, 550, 30)) + [560.0] * 30 + [570.0] * 40
    terminal = [i % 10 == 0 for i in range(100)]
    return trajectories(np.round(returns), costs, terminal)


def test_card_statistics():
    dataset = meaningful_dataset()
    card = dataset_card(dataset, TASK, cost_limit=10)
    assert card["n_trajectories"] == 100 and card["n_transitions"] == 100 * LENGTH
    assert card["dsrl_trajectories"] == 651
    assert card["fraction_cost_zero"] == pytest.approx(0.2)
    assert card["fraction_safe"] == pytest.approx(0.3)
    assert card["n_safe"] == 30
    assert card["fraction_cost_le_2kappa"] == pytest.approx(0.6)
    assert card["fraction_cost_le"] == {"10": 0.3, "20": 0.6, "40": 1.0, "80": 1.0}
    assert card["best_safe_return"] == 550.0
    expected = (550.0 - TASK.reward_min) / (TASK.reward_max - TASK.reward_min)
    assert card["best_safe_return_normalised"] == pytest.approx(expected)
    assert card["return"]["min"] == 250.0 and card["return"]["max"] == 570.0
    assert card["cost"] == {"min": 0.0, "mean": pytest.approx(17.0), "max": 30.0}
    assert card["termination_rate"] == pytest.approx(0.1)
    assert card["mean_step_cost"] == pytest.approx(17.0 / LENGTH)
    assert card["max_step_cost"] == 1.0
    assert card["episode_length"]["min"] == card["episode_length"]["max"] == LENGTH
    assert card["spearman_rho"] > 0.8  # returns rise with cost here
    assert card["next_obs_mismatch_rows"] == 0
    assert card["content_sha256"] == dataset.sha256 and card["source"] == "generated"
    json.dumps(card, allow_nan=False)  # strictly JSON-able


def test_verdict_pass_and_each_failure():
    assert dataset_card(meaningful_dataset(), TASK, 10)["verdict"]["meaningful"]

    # too few safe: 10 of 100; too few unsafe above 2 kappa; low best safe return
    few_safe = trajectories([500.0] * 10 + [560.0] * 90, [0] * 10 + [30] * 90)
    crit = dataset_card(few_safe, TASK, 10)["verdict"]["criteria"]
    assert not crit["safe_fraction"]["pass"] and not crit["safe_trajectories"]["pass"]
    assert crit["unsafe_fraction"]["pass"] and crit["best_safe_return"]["pass"]

    no_unsafe = trajectories([500.0] * 40 + [560.0] * 60, [0] * 40 + [15] * 60)
    crit = dataset_card(no_unsafe, TASK, 10)["verdict"]["criteria"]
    assert crit["safe_fraction"]["pass"] and not crit["unsafe_fraction"]["pass"]

    weak_safe = trajectories([300.0] * 40 + [560.0] * 60, [0] * 40 + [30] * 60)
    card = dataset_card(weak_safe, TASK, 10)
    assert not card["verdict"]["criteria"]["best_safe_return"]["pass"]
    assert not card["verdict"]["meaningful"]

    none_safe = trajectories([560.0] * 5, [30] * 5)
    card = dataset_card(none_safe, TASK, 10)
    assert card["best_safe_return"] is None and card["n_safe"] == 0
    assert card["verdict"]["criteria"]["best_safe_return"]["pass"] is False


def test_failed_criteria_are_named_with_value_and_target():
    assert failed_criteria(dataset_card(meaningful_dataset(), TASK, 10)) == []
    weak_safe = trajectories([300.0] * 40 + [560.0] * 60, [0] * 40 + [30] * 60)
    card = dataset_card(weak_safe, TASK, 10)
    assert failed_criteria(card) == ["best_safe_return"]
    best = card["best_safe_return_normalised"]
    assert describe_failures(card) == (
        f"best_safe_return {best:.3g} (target best safe return >= 0.7 normalised)"
    )
    none_safe = dataset_card(trajectories([560.0] * 5, [30] * 5), TASK, 10)
    assert "best_safe_return n/a" in describe_failures(none_safe)


def test_criteria_warning_only_for_failing_data_that_is_not_dsrls():
    assert criteria_warning(meaningful_dataset(), TASK, 10) is None
    weak_safe = trajectories([300.0] * 40 + [560.0] * 60, [0] * 40 + [30] * 60)
    message = criteria_warning(weak_safe, TASK, 10)
    assert "generated dataset for CarRun" in message and "kappa=10" in message
    assert "best_safe_return" in message
    # at kappa=30 the 60 trajectories of cost 30 are safe, and best safe return is 560
    assert "best_safe_return" not in (criteria_warning(weak_safe, TASK, 30) or "")
    # DSRL's own files are what the published numbers come from: no warning, whatever they hold
    assert criteria_warning(dataclasses.replace(weak_safe, source="dsrl"), TASK, 10) is None


def test_cost_limit_defaults_to_the_drcorl_one():
    card = dataset_card(meaningful_dataset(), TASK)
    assert card["cost_limit"] == TASK.drcorl_cost_limit == 30.0
    assert card["fraction_safe"] == pytest.approx(1.0)


def test_grid_occupancy_over_the_reference_box():
    returns = np.array([TASK.reward_min, TASK.reward_max, 400.0, 400.0, 1000.0])
    costs = np.array([0.0, TASK.max_cost, 19.9, 19.9, 100.0])
    grid = grid_occupancy(returns, costs, TASK)
    counts = np.array(grid["counts"])
    assert counts.sum() == 5
    assert counts[0, 0] == 1  # (R_min, 0)
    assert counts[9, 9] == 2  # (R_max, max cost) and the outlier clipped into the corner
    r_bin = int((400.0 - TASK.reward_min) / (TASK.reward_max - TASK.reward_min) * 10)
    assert counts[r_bin, 4] == 2
    assert grid["occupied_cells"] == 3 and grid["outside_box"] == 1


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    costs = rng.integers(0, 12, size=300).astype(float)  # many ties, as episode costs have
    returns = np.round(costs * 3 + rng.normal(scale=8, size=300))
    expected = spearmanr(costs, returns).statistic
    assert card_module._spearman(costs, returns) == pytest.approx(expected, abs=1e-12)


def test_constant_columns_give_no_spearman():
    card = dataset_card(trajectories([500.0] * 5, [3] * 5), TASK, 10)
    assert card["spearman_rho"] is None


def test_next_obs_mismatch_is_counted():
    dataset = meaningful_dataset()
    dataset.next_observations[3] += 1.0  # inside trajectory 0
    dataset.next_observations[LENGTH - 1] += 1.0  # a trajectory's last row: not checked
    assert dataset_card(dataset, TASK, 10)["next_obs_mismatch_rows"] == 1


def test_scatter_png(tmp_path):
    path = scatter_png(meaningful_dataset(), TASK, 10, tmp_path / "sub" / "cr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["cr.png"]


def test_format_card_is_readable():
    text = card_module.format_card(dataset_card(meaningful_dataset(), TASK, 10))
    assert "CarRun" in text and "best safe return" in text and "[pass] safe_fraction" in text
    assert "verdict (docs/datasets.md): meaningful" in text


def test_cli_card_writes_json_and_png(tmp_path, capsys):
    data_file = write_dataset(meaningful_dataset(), tmp_path / "carrun-generated.hdf5")
    out = tmp_path / "cards"
    code = main(
        [
            "data",
            "card",
            "CarRun",
            "--path",
            str(data_file),
            "--out",
            str(out),
            "--cost-limit",
            "10",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "dataset card: CarRun (source path, cost limit 10)" in printed
    card = json.loads((out / "CarRun-path.json").read_text())
    assert card["n_trajectories"] == 100 and card["verdict"]["meaningful"]
    assert (out / "CarRun-path.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == ["CarRun-path.json", "CarRun-path.png"]


def test_cli_card_default_out_is_reports_datasets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCHMARK_REPORTS_DIR", str(tmp_path / "reports"))
    data_file = write_dataset(meaningful_dataset(), tmp_path / "carrun-generated.hdf5")
    assert main(["data", "card", "CarRun", "--path", str(data_file)]) == 0
    assert (tmp_path / "reports" / "datasets" / "CarRun-path.json").is_file()


def test_cli_card_toy_task(tmp_path, capsys):
    pytest.importorskip("benchmark.data.toy")
    assert main(["data", "card", "ToyVelocity", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "ToyVelocity-toy.png").is_file()
    assert "ToyVelocity" in capsys.readouterr().out


def test_cli_card_bad_task_exits_2_with_one_line(capsys):
    assert main(["data", "card", "NoSuchTask"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown task 'NoSuchTask'")


def test_cli_card_missing_dsrl_file_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path / "empty"))
    assert main(["data", "card", "CarGoal1", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "looked for" in err[0] and "data download CarGoal1" in err[0]
    assert not (tmp_path / "out").exists()


def test_cli_card_bad_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"garbage")
    assert main(["data", "card", "CarRun", "--path", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt or truncated" in err[0]


def test_unsafe_side_counts_above_kappa_where_2_kappa_is_above_the_cost_cap():
    # CarRun's cap is 40: at kappa 30 no kept trajectory can exceed 2 kappa = 60.
    data = trajectories([500.0] * 40 + [560.0] * 60, [10] * 40 + [35] * 60)
    crit = dataset_card(data, TASK, 30)["verdict"]["criteria"]["unsafe_fraction"]
    assert crit["pass"] and crit["value"] == pytest.approx(0.6) and "C > kappa" in crit["target"]
    crit = dataset_card(data, TASK, 10)["verdict"]["criteria"]["unsafe_fraction"]
    assert crit["value"] == pytest.approx(0.6) and "C > 2 kappa" in crit["target"]


def test_card_shows_the_content_and_the_file_hash(tmp_path):
    import hashlib

    from benchmark.data.dsrl import read_dataset

    path = write_dataset(meaningful_dataset(), tmp_path / "Mine.hdf5")
    loaded = read_dataset(path, TASK, source="path")
    card = dataset_card(loaded, TASK)
    assert card["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["content_sha256"] == meaningful_dataset().content_sha256 == loaded.sha256
    assert card["file_sha256"] != card["content_sha256"]
    text = card_module.format_card(card)
    assert card["file_sha256"] in text and card["content_sha256"] in text


def test_a_card_of_another_dataset_is_never_overwritten(tmp_path):
    from benchmark.data.card import report_stem

    assert report_stem(tmp_path, "CarRun", "generated", "ab" * 32) == "CarRun-generated"
    (tmp_path / "CarRun-generated.json").write_text('{"content_sha256": "' + "ab" * 32 + '"}')
    assert report_stem(tmp_path, "CarRun", "generated", "ab" * 32) == "CarRun-generated"
    other = "cd" * 32
    assert report_stem(tmp_path, "CarRun", "generated", other) == "CarRun-generated-cdcdcdcdcdcd"


def test_the_verdict_gives_its_reason_in_words_with_the_recipe_note_of_that_revision():
    import dataclasses

    assert dataset_card(meaningful_dataset(), TASK, 10)["verdict"]["reason"] == (
        "meets every criterion of docs/datasets.md"
    )
    weak_safe = trajectories([300.0] * 40 + [560.0] * 60, [0] * 40 + [30] * 60)
    reason = dataset_card(weak_safe, TASK, 10)["verdict"]["reason"]
    assert reason.startswith("fails best_safe_return") and "no reason recorded" in reason
    note = "the simulator's safe policies top out at 0.5, measured"
    spec = dataclasses.replace(TASK.collect, criteria_note=note, revision=4)
    noted = dataclasses.replace(TASK, collect=spec)
    weak_safe.attrs["recipe_revision"] = 4
    reason = dataset_card(weak_safe, noted, 10)["verdict"]["reason"]
    assert reason.startswith("fails best_safe_return") and reason.endswith(note)
    assert note in format_card(dataset_card(weak_safe, noted, 10))
    weak_safe.attrs["recipe_revision"] = 3  # an older recipe's data: not what the note is about
    assert note not in dataset_card(weak_safe, noted, 10)["verdict"]["reason"]
