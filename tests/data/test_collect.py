"""The collector on a toy task at tiny scale: episode log, resume after a kill, filters, and the
HDF5 round trip through the DSRL reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.data.collect import (
    Collector,
    CollectSpec,
    EpisodeLog,
    collect,
    collect_spec,
    dataset_file_name,
    finalise,
    grid_filter,
    load_generated,
    range_filter,
    run_dir,
)
from benchmark.data.collect.ppo_lagrangian import Lagrangian, PPOLagConfig, linear_cost_limit
from benchmark.errors import ConfigError, DatasetNotFoundError
from benchmark.tasks import DSRL_TASKS, get_task

TOY = get_task("ToyVelocity")
TINY = CollectSpec(
    steps=3000, trajectories=20, limit_start=20.0, limit_end=2.0, num_envs=2, rollout_steps=500
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path / "dsrl"))
    return tmp_path / "cache"


def _collector(folder, spec=TINY, seed=0):
    return Collector(TOY, spec, seed, folder, progress=False)


def test_schedule_holds_then_anneals_then_holds():
    values = [linear_cost_limit(s, 1000, 80.0, 5.0) for s in (0, 99, 100, 500, 900, 1000)]
    assert values[0] == values[1] == values[2] == 80.0
    assert values[3] == pytest.approx(42.5)
    assert values[4] == values[5] == 5.0
    rising = [linear_cost_limit(s, 1000, 5.0, 150.0) for s in range(0, 1001, 50)]
    assert np.all(np.diff(rising) >= 0) and rising[-1] == 150.0


@pytest.mark.parametrize("kind", ["pid", "plain"])
def test_lagrangian_rises_above_the_limit_and_stays_non_negative(kind):
    lag = Lagrangian(PPOLagConfig(lagrangian=kind))
    for _ in range(5):
        lag.update(episode_cost=50.0, cost_limit=10.0)
    assert lag.value > 0.1
    for _ in range(200):
        lag.update(episode_cost=0.0, cost_limit=10.0)
    assert lag.value == 0.0


def test_episode_log_holds_every_finished_episode(tmp_path):
    state = _collector(tmp_path / "run").run()
    assert state.step == TINY.steps and state.updates == TINY.steps // TINY.rollout_steps
    log = EpisodeLog(tmp_path / "run" / "episodes")
    assert log.chunk_indices() == list(range(state.updates))
    table = log.load()
    assert table.num_episodes == state.episodes > 0
    assert table.obs.shape == (int(table.lengths.sum()) + table.num_episodes, TOY.obs_dim)
    assert table.actions.shape == (int(table.lengths.sum()), TOY.act_dim)
    assert np.all(table.lengths <= TOY.horizon)
    # Every logged episode really ended, and no step was logged that the counter did not count.
    assert np.all(table.terminated | table.truncated)
    assert int(table.lengths.sum()) <= state.step
    assert np.all(np.abs(table.actions) <= 1.0)
    # (env, end step) identifies an episode: no duplicates.
    keys = set(zip(table.env_index.tolist(), table.end_step.tolist()))
    assert len(keys) == table.num_episodes


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path):
    folder = tmp_path / "run"
    first = _collector(folder).run(max_updates=2)  # the "kill": stop without finalising
    assert first.step == 2 * TINY.rollout_steps
    log = EpisodeLog(folder / "episodes")
    before = {i: log.chunk_path(i).read_bytes() for i in log.chunk_indices()}
    assert sorted(before) == [0, 1]
    # A kill between writing a chunk and the checkpoint that counts it leaves an orphan chunk.
    log.chunk_path(2).write_bytes(before[1])
    resumed = _collector(folder)
    state = resumed.run()
    assert state.step == TINY.steps
    assert state.updates == TINY.steps // TINY.rollout_steps
    assert log.chunk_indices() == list(range(state.updates))
    for i, data in before.items():  # episodes logged before the kill are kept as they were
        assert log.chunk_path(i).read_bytes() == data
    assert log.chunk_path(2).read_bytes() != before[1]
    steps = np.loadtxt(folder / "progress.csv", delimiter=",", skiprows=1, usecols=0)
    assert steps.tolist() == [500 * (k + 1) for k in range(state.updates)]
    table = log.load()
    assert table.num_episodes == state.episodes
    assert np.all(np.diff(table.end_step[table.env_index == 0]) > 0)


def test_resume_refuses_a_different_budget(tmp_path):
    _collector(tmp_path / "run").run(max_updates=1)
    other = CollectSpec(**{**TINY.__dict__, "steps": 6000})
    with pytest.raises(ConfigError, match="delete that folder"):
        _collector(tmp_path / "run", spec=other).run()


def test_a_revision_that_only_filters_again_reuses_the_finished_run(tmp_path):
    import dataclasses

    first = _collector(tmp_path / "run").run()
    refiltered = dataclasses.replace(TINY, trajectories=5, revision=2, run_revision=1)
    again = _collector(tmp_path / "run", spec=refiltered).run()
    assert again.step == first.step == TINY.steps and again.updates == first.updates
    rerun = dataclasses.replace(refiltered, limit_start=30.0)  # a run field: a new run
    with pytest.raises(ConfigError, match="delete that folder"):
        _collector(tmp_path / "run", spec=rerun).run()


def test_grid_filter_keeps_every_occupied_cell_and_flattens_density():
    rng = np.random.default_rng(0)
    dense = rng.normal([100.0, 10.0], [1.0, 0.5], size=(5000, 2))  # one crowded corner
    sparse = rng.uniform([0.0, 0.0], [200.0, 100.0], size=(60, 2))
    returns = np.concatenate([dense[:, 0], sparse[:, 0]])
    costs = np.concatenate([dense[:, 1], sparse[:, 1]])
    keep = grid_filter(returns, costs, 100, np.random.default_rng(1))
    assert keep.shape == (100,) and np.unique(keep).shape == (100,)
    # Nearly all of the sparse points survive although they are ~1% of the data.
    assert np.sum(keep >= 5000) >= 45
    # Fewer points than the target: all kept.
    assert grid_filter(returns[:50], costs[:50], 100, rng).tolist() == list(range(50))


def test_grid_filter_is_one_per_cell_when_cells_outnumber_the_target():
    side = np.repeat(np.arange(20.0), 20)
    keep = grid_filter(side, np.tile(np.arange(20.0), 20), 16, np.random.default_rng(0))
    assert keep.shape == (16,)
    cells = {(int(side[i] // 5), int(np.tile(np.arange(20.0), 20)[i] // 5)) for i in keep}
    assert len(cells) == 16


def test_range_filter_follows_dsrl():
    returns, costs = np.array([-1.0, 5.0, 5.0]), np.array([0.0, 0.0, 500.0])
    task = get_task("HalfCheetahVelocity")
    assert range_filter(task, collect_spec(task), returns, costs).tolist() == [False, True, False]
    carrun = get_task("CarRun")
    assert range_filter(carrun, collect_spec(carrun), returns, costs).tolist() == [
        True,
        True,
        False,
    ]


def test_finalise_writes_a_dsrl_file_that_round_trips(tmp_path, cache):
    from benchmark.data.dsrl import read_dataset

    folder = run_dir(TOY, 0, cache / "generated")
    _collector(folder).run()
    path = finalise(TOY, TINY, 0, folder, cache / "generated", report_dir=tmp_path / "reports")
    assert path.name.startswith("Generated-ToyVelocity-") and path.suffix == ".hdf5"
    assert path.parent == cache / "generated"
    data = read_dataset(path, TOY, source="generated")
    assert data.source == "generated"
    assert path.name == dataset_file_name(TOY, data.num_episodes)
    assert data.num_episodes == min(
        TINY.trajectories, int(data.attrs["episodes_after_range_filter"])
    )
    assert data.attrs["task"] == "ToyVelocity" and data.attrs["steps"] == TINY.steps
    assert json.loads(data.attrs["schedule"])["start"] == 20.0
    # DSRL semantics: a trajectory ends on terminals | timeouts, and only there.
    ends = np.flatnonzero(data.terminals | data.timeouts)
    assert ends[-1] == len(data) - 1 and ends.shape[0] == data.num_episodes
    assert not np.any(data.terminals & data.timeouts)
    inside = np.ones(len(data), dtype=bool)
    inside[ends] = False
    np.testing.assert_array_equal(
        data.next_observations[inside], data.observations[1:][inside[:-1]]
    )
    # Same episodes as the log: every kept (R, C) pair is a logged one.
    table = EpisodeLog(folder / "episodes").load()
    logged = set(zip(np.round(table.returns, 3), np.round(table.episode_costs, 3)))
    kept = set(zip(np.round(data.episode_returns, 3), np.round(data.episode_costs, 3)))
    assert kept <= logged
    assert (tmp_path / "reports" / "ToyVelocity-generated.json").exists()
    assert (tmp_path / "reports" / "ToyVelocity-generated.png").exists()
    assert load_generated("ToyVelocity").sha256 == data.sha256


def test_collect_entry_point_resumes_to_the_same_file(cache):
    path = collect("ToyVelocity", steps=2000, trajectories=10, num_envs=2, progress=False)
    again = collect("ToyVelocity", steps=2000, trajectories=10, num_envs=2, progress=False)
    assert path == again and path.exists()


def test_a_collection_running_in_another_process_is_refused(cache):
    from benchmark.errors import BusyError
    from benchmark.lock import exclusive

    folder = run_dir(TOY, 0, cache / "generated")
    with exclusive(folder, "the other collection"):
        with pytest.raises(BusyError, match="the collection of ToyVelocity seed 0 is already"):
            collect("ToyVelocity", steps=2000, trajectories=10, num_envs=2, progress=False)
        assert not (folder / "checkpoint.pt").exists()


def test_load_generated_without_a_file_says_how_to_make_one(cache):
    with pytest.raises(DatasetNotFoundError, match="make data TASK=HalfCheetahVelocity"):
        load_generated("HalfCheetahVelocity")


def test_collect_all_skips_finished_tasks_and_orders_first_needed_then_navigation(cache):
    from benchmark.data.collect import COLLECTION_ORDER, generated_dir
    from benchmark.data.collect_all import pending_tasks

    assert sorted(COLLECTION_ORDER) == sorted(t.name for t in DSRL_TASKS)
    assert COLLECTION_ORDER[:3] == ("HalfCheetahVelocity", "CarRun", "PointGoal1")
    families = [get_task(t).family for t in COLLECTION_ORDER[3:]]
    assert families[:5] == ["navigation"] * 5
    root = generated_dir()
    done = run_dir(get_task("CarRun"), 0, root)
    done.mkdir(parents=True)
    (done / "done.json").write_text("{}")
    assert pending_tasks(["PointGoal1", "CarRun"], 0, root) == ["PointGoal1"]
    assert pending_tasks(["CarRun"], 1, root) == ["CarRun"]
    # CarGoal1's recipe filters revision 2's run again: a done.json of revision 2 is not done
    refiltered = run_dir(get_task("CarGoal1"), 0, root)
    assert refiltered.name.endswith("-r2") and get_task("CarGoal1").collect.revision == 3
    refiltered.mkdir(parents=True)
    (refiltered / "done.json").write_text("{}")
    assert pending_tasks(["CarGoal1"], 0, root) == ["CarGoal1"]
    (refiltered / "done.json").write_text('{"revision": 3}')
    assert pending_tasks(["CarGoal1"], 0, root) == []


def test_cli_collect_writes_the_dataset_and_its_card(cache, tmp_path, monkeypatch, capsys):
    from benchmark.cli import main

    monkeypatch.setenv("BENCHMARK_REPORTS_DIR", str(tmp_path / "reports"))
    argv = ["data", "collect", "ToyVelocity", "--steps", "2000", "--trajectories", "10"]
    assert main(argv + ["--num-envs", "2"]) == 0
    assert "dataset card: ToyVelocity (source generated" in capsys.readouterr().out
    assert len(list((cache / "generated").glob("Generated-ToyVelocity-*.hdf5"))) == 1
    card = json.loads(
        (tmp_path / "reports" / "datasets" / "ToyVelocity-generated.json").read_text()
    )
    assert card["source"] == "generated" and card["collection"]["steps"] == 2000
    assert main(["data", "collect", "NoSuchTask"]) == 2


def test_same_seed_same_software_gives_a_byte_identical_hdf5(tmp_path, monkeypatch):
    paths = []
    for attempt in ("a", "b"):
        monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / attempt))
        path = collect("ToyVelocity", steps=2000, trajectories=10, num_envs=2, progress=False)
        paths.append(path)
    assert paths[0].name == paths[1].name
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_envs_in_worker_processes_give_the_same_episodes(tmp_path):
    spec = CollectSpec(
        steps=1200, trajectories=20, limit_start=20.0, limit_end=2.0, num_envs=3, rollout_steps=600
    )
    tables = []
    for workers in (0, 2):
        folder = tmp_path / f"w{workers}"
        Collector(TOY, spec, 0, folder, progress=False, workers=workers).run()
        tables.append(EpisodeLog(folder / "episodes").load())
    assert tables[0].num_episodes == tables[1].num_episodes > 0
    for key in ("obs", "actions", "rewards", "costs", "lengths", "end_step"):
        np.testing.assert_array_equal(getattr(tables[0], key), getattr(tables[1], key))


def test_refresh_card_rewrites_a_finished_collections_card(cache, tmp_path):
    from benchmark.data.collect import refresh_card

    path = collect("ToyVelocity", steps=2000, trajectories=10, num_envs=2, progress=False)
    path.with_suffix(".json").unlink()
    card = refresh_card("ToyVelocity", report_dir=tmp_path / "reports")
    assert card["collection"]["steps"] == 2000 and card["file_sha256"]
    assert json.loads(path.with_suffix(".json").read_text())["path"] == str(path)
    assert (tmp_path / "reports" / "ToyVelocity-generated.png").exists()


@pytest.mark.slow
def test_collect_all_runs_a_task_records_its_times_and_resumes(cache, tmp_path, monkeypatch):
    from benchmark.data.collect_all import run_all

    monkeypatch.setenv("BENCHMARK_REPORTS_DIR", str(tmp_path / "reports"))
    assert run_all(["ToyVelocity"], jobs=1, seed=0) == 0
    rows = (cache / "generated" / "logs" / "timings.csv").read_text().splitlines()
    assert rows[0].startswith("task,seed,wall_seconds,cpu_seconds") and len(rows) == 2
    task, _, wall, cpu, code, _ = rows[1].split(",")
    assert task == "ToyVelocity" and code == "0" and float(cpu) > 0 and float(wall) > 0
    assert run_all(["ToyVelocity"], jobs=1, seed=0) == 0  # finished: skipped
    assert len((cache / "generated" / "logs" / "timings.csv").read_text().splitlines()) == 2


def test_a_collection_with_no_episode_in_range_says_so_and_leaves_no_folder(cache, monkeypatch):
    """(SwimmerVelocity at 16k steps: every episode has R < 0.) One-line error, no dataset,
    and no run folder that would end the same way on the next attempt."""
    from benchmark.data.collect import run as run_mod

    real = run_mod.range_filter
    monkeypatch.setattr(run_mod, "range_filter", lambda task, spec, r, c: np.zeros(len(r), bool))
    with pytest.raises(ConfigError, match="none of the .* episodes logged in 2,000 steps"):
        collect("ToyVelocity", steps=2000, trajectories=10, num_envs=2, progress=False)
    assert not run_dir(TOY, 0, cache / "generated").exists()
    assert not list((cache / "generated").glob("*.hdf5"))
    monkeypatch.setattr(run_mod, "range_filter", real)
    path = collect("ToyVelocity", steps=2000, trajectories=10, num_envs=2, progress=False)
    assert path.exists()


def test_a_refiltering_revision_with_no_episode_in_range_keeps_the_earlier_run(tmp_path):
    import dataclasses

    from benchmark.data.collect.run import _discard_unusable

    folder = tmp_path / "run"
    folder.mkdir()
    refiltered = dataclasses.replace(TINY, revision=2, run_revision=1)
    with pytest.raises(ConfigError, match="is kept: it is revision 1's run"):
        _discard_unusable(TOY, refiltered, folder, 7)
    assert folder.exists()
    with pytest.raises(ConfigError, match="removed"):
        _discard_unusable(TOY, TINY, folder, 7)
    assert not folder.exists()
